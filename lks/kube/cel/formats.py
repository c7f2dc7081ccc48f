"""Kubernetes' format library (`library/format.go`): `format.dns1123Label().validate(s)` and
`format.named("dns1123Label")`; `validate` gives `optional.none()` for a valid string and the
list of upstream's messages otherwise."""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from typing import Any

import cel

from lks.kube import validation
from lks.kube.cel.library import function, tagged, text_of
from lks.kube.typevalidation import common

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _prefix(rule: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """A generateName prefix may end with a dash (upstream's maskTrailingDash)."""
    return lambda s: rule(s[:-1] + "a" if len(s) > 1 and s.endswith("-") else s)


def _uri(s: str) -> list[str]:
    try:
        urllib.parse.urlsplit(s)
    except ValueError as err:
        return [f"invalid URI: {err}"]
    return [] if s.startswith("/") or re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", s) else ["invalid URI: invalid URI for request"]


def _uuid(s: str) -> list[str]:
    return [] if _UUID.match(s) else ["does not match the UUID format"]


def _byte(s: str) -> list[str]:
    try:
        base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return ["invalid base64"]
    return []


def _date(s: str) -> list[str]:
    try:
        datetime.strptime(s, "%Y-%m-%d")
    except ValueError:
        return ["invalid date"]
    return []


def _datetime(s: str) -> list[str]:
    try:
        datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return ["invalid datetime"]
    return [] if "T" in s or "t" in s else ["invalid datetime"]


FORMATS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": validation.dns_label,
    "dns1123Subdomain": validation.dns_subdomain,
    "dns1035Label": validation.dns1035_label,
    "qualifiedName": common.is_qualified_name,
    "dns1123LabelPrefix": _prefix(validation.dns_label),
    "dns1123SubdomainPrefix": _prefix(validation.dns_subdomain),
    "dns1035LabelPrefix": _prefix(validation.dns1035_label),
    "labelKey": common.is_qualified_name,
    "labelValue": common.is_label_value,
    "uri": _uri,
    "uuid": _uuid,
    "byte": _byte,
    "date": _date,
    "datetime": _datetime,
}


def _constructor(name: str) -> Callable[[], str]:
    return lambda: tagged("format", name)


for _name in FORMATS:
    function(f"format.{_name}")(_constructor(_name))


@function("format.named", str)
def named(name: str) -> Any:
    return cel.OptionalValue.of(tagged("format", name)) if name in FORMATS else cel.OptionalValue.none()


@function("validate", "format")
def validate(fmt: str, value: str) -> Any:
    problems = FORMATS[text_of(fmt)](value)
    return cel.OptionalValue.of(problems) if problems else cel.OptionalValue.none()
