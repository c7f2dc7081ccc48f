"""`lks.kube.queryparams`: parameters converted as runtime.Convert_Slice_string_To_* converts them."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from lks.kube import errors, queryparams


@pytest.mark.parametrize(("values", "expect"), [
    pytest.param([], None, id="absent"),
    pytest.param(["false"], False, id="false"),
    pytest.param(["FaLsE"], False, id="false-any-case"),
    pytest.param(["0"], False, id="zero"),
    pytest.param(["true"], True, id="true"),
    pytest.param(["maybe"], True, id="anything-else"),
    pytest.param([""], True, id="empty"),
    pytest.param(["1", "false"], True, id="first-counts"),
])
def test_booleans(values, expect):
    assert queryparams.boolean(MultiDict([("p", v) for v in values]), "p") is expect


@pytest.mark.parametrize(("text", "expect"), [
    pytest.param("42", 42, id="plain"), pytest.param("+7", 7, id="plus"), pytest.param("-7", -7, id="minus"),
    pytest.param("9223372036854775807", 2**63 - 1, id="max"),
    pytest.param("-9223372036854775808", -(2**63), id="min"),
    pytest.param("9223372036854775808", "value out of range", id="over"),
    pytest.param("", "invalid syntax", id="empty"), pytest.param("+", "invalid syntax", id="sign"),
    pytest.param("1e3", "invalid syntax", id="exponent"), pytest.param("0x10", "invalid syntax", id="hex"),
    pytest.param("1_000", "invalid syntax", id="underscore"), pytest.param(" 1", "invalid syntax", id="space"),
])
def test_int64_is_gos_parse_int(text, expect):
    if isinstance(expect, int):
        assert queryparams.parse_int64(text) == expect
        return
    with pytest.raises(errors.APIError) as err:
        queryparams.parse_int64(text)
    assert err.value.code == 400
    assert err.value.status()["message"] == f'strconv.ParseInt: parsing "{text}": {expect}'
