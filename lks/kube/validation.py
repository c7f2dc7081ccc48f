"""Object metadata validation as upstream's `ValidateObjectMeta`: name rules per type, labels,
annotations, generateName. Each check returns a list of `errors.Cause`; the registry turns a
non-empty list into one 422 Invalid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from lks.kube.errors import Cause

_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

# A name rule returns the problems with a name (empty when valid), like upstream's ValidateNameFunc.
NameRule = Callable[[str], list[str]]


def dns_subdomain(name: str) -> list[str]:
    msgs = []
    if len(name) > 253:
        msgs.append("must be no more than 253 characters")
    if not _SUBDOMAIN_RE.match(name):
        msgs.append(SUBDOMAIN_MSG)
    return msgs


def dns_label(name: str) -> list[str]:
    msgs = []
    if len(name) > 63:
        msgs.append("must be no more than 63 characters")
    if not _LABEL_RE.match(name):
        msgs.append(LABEL_MSG)
    return msgs


def dns1035_label(name: str) -> list[str]:
    msgs = []
    if len(name) > 63:
        msgs.append("must be no more than 63 characters")
    if not _DNS1035_RE.match(name):
        msgs.append(DNS1035_MSG)
    return msgs


def path_segment(name: str) -> list[str]:
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def _qualified_name(key: str) -> list[str]:
    prefix, slash, name = key.rpartition("/")
    msgs = []
    if slash and not prefix:
        msgs.append("prefix part must be non-empty")
    elif prefix:
        msgs += [f"prefix part {m}" for m in dns_subdomain(prefix)]
    if not name:
        msgs.append("name part must be non-empty")
    else:
        if len(name) > 63:
            msgs.append("name part must be no more than 63 characters")
        if not _QUALIFIED_NAME_RE.match(name):
            msgs.append(QUALIFIED_NAME_MSG)
    return msgs


def validate_labels(labels: Any, field: str) -> list[Cause]:
    causes: list[Cause] = []
    if labels is None:
        return causes
    if not isinstance(labels, Mapping):
        return [Cause.type_invalid(field, labels, "must be of type object")]
    for key, value in labels.items():
        for msg in _qualified_name(key):
            causes.append(Cause.invalid(field, key, msg))
        if not isinstance(value, str):
            causes.append(Cause.type_invalid(f"{field}[{key}]", value, "must be of type string"))
            continue
        if len(value) > 63:
            causes.append(Cause.invalid(field, value, "must be no more than 63 characters"))
        if not _LABEL_VALUE_RE.match(value):
            causes.append(Cause.invalid(field, value, LABEL_VALUE_MSG))
    return causes


_ANNOTATIONS_LIMIT = 256 * 1024


def validate_annotations(annotations: Any, field: str) -> list[Cause]:
    if annotations is None:
        return []
    if not isinstance(annotations, Mapping):
        return [Cause.type_invalid(field, annotations, "must be of type object")]
    causes: list[Cause] = []
    total = 0
    for key, value in annotations.items():
        for msg in _qualified_name(key.lower()):
            causes.append(Cause.invalid(field, key, msg))
        if not isinstance(value, str):
            causes.append(Cause.type_invalid(f"{field}[{key}]", value, "must be of type string"))
            continue
        total += len(key) + len(value)
    if total > _ANNOTATIONS_LIMIT:
        causes.append(Cause(reason="FieldValueTooLong", field=field,
                            message=f"Too long: may not be more than {_ANNOTATIONS_LIMIT} bytes"))
    return causes


def validate_object_meta(meta: Mapping[str, Any], *, namespaced: bool, name_rule: NameRule) -> list[Cause]:
    """Upstream's `ValidateObjectMeta` for a new or updated object."""
    causes: list[Cause] = []
    name = meta.get("name")
    if not name:
        causes.append(Cause.required("metadata.name", "name or generateName is required"))
    elif not isinstance(name, str):
        causes.append(Cause.type_invalid("metadata.name", name, "must be of type string"))
    else:
        causes += [Cause.invalid("metadata.name", name, m) for m in name_rule(name)]
    generate_name = meta.get("generateName")
    if generate_name:
        # the prefix is checked with a trailing character stripped, as upstream does
        causes += [Cause.invalid("metadata.generateName", generate_name, m)
                   for m in name_rule(generate_name.rstrip("-") or "a")]
    ns = meta.get("namespace")
    if namespaced:
        if not ns:
            causes.append(Cause.required("metadata.namespace"))
        else:
            causes += [Cause.invalid("metadata.namespace", ns, m) for m in dns_label(ns)]
    elif ns:
        causes.append(Cause.forbidden("metadata.namespace", "not allowed on this type"))
    causes += validate_labels(meta.get("labels"), "metadata.labels")
    causes += validate_annotations(meta.get("annotations"), "metadata.annotations")
    finalizers = meta.get("finalizers")
    if finalizers is not None:
        if not isinstance(finalizers, list):
            causes.append(Cause.type_invalid("metadata.finalizers", finalizers, "must be of type array"))
        else:
            for i, f in enumerate(finalizers):
                if not isinstance(f, str) or _qualified_name(f):
                    causes.append(Cause.invalid(f"metadata.finalizers[{i}]", f,
                                                "a valid finalizer name must be a qualified name"))
    return causes
