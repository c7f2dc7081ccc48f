"""Label and field selector parsing and matching, with upstream's error wording."""

from __future__ import annotations

import pytest

from lks.kube import errors, selectors


@pytest.mark.parametrize(("text", "labels", "matches"), [
    pytest.param("a=b", {"a": "b"}, True, id="equal"),
    pytest.param("a==b", {"a": "c"}, False, id="double-equal"),
    pytest.param("a!=b", {}, True, id="not-equal-missing"),
    pytest.param("a in (x,y)", {"a": "y"}, True, id="in"),
    pytest.param("a notin (x,y)", {"a": "z"}, True, id="notin"),
    pytest.param("a notin (x,y)", {}, True, id="notin-missing"),
    pytest.param("a", {"a": ""}, True, id="exists"),
    pytest.param("!a", {"a": "x"}, False, id="not-exists"),
    pytest.param("a=b,c", {"a": "b"}, False, id="and"),
    pytest.param("app.kubernetes.io/name=web", {"app.kubernetes.io/name": "web"}, True, id="prefixed"),
    pytest.param("a=", {"a": ""}, True, id="empty-value"),
])
def test_label_selector(text, labels, matches):
    assert selectors.parse_labels(text).matches(labels) is matches


@pytest.mark.parametrize("text", ["a in x", "=b", "a=b=c", "a in (", "Bad Key=1", "a=b,,"])
def test_bad_label_selectors_are_400(text):
    with pytest.raises(errors.APIError) as err:
        selectors.parse_labels(text)
    assert err.value.code == 400


def test_field_selector():
    sel = selectors.parse_fields("metadata.name=a,status.phase!=Running", lambda f: True)
    values = {"metadata.name": "a", "status.phase": "Pending"}
    assert sel.matches(values.get)
    assert sel.exact("metadata.name") == "a"
    with pytest.raises(errors.APIError) as err:
        selectors.parse_fields("spec.foo=1", lambda f: f == "metadata.name")
    assert err.value.message == "field label not supported: spec.foo"


def test_label_selector_object():
    sel = selectors.from_label_selector_object(
        {"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]})
    assert sel.matches({"a": "b"}) and not sel.matches({"a": "b", "c": "d"})
