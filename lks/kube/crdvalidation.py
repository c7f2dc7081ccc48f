"""Validation of CustomResourceDefinitions as apiextensions' `ValidateCustomResourceDefinition`
(and `…Update`) does it: group, scope, names, versions (names, one storage version, deprecation
warnings), per-version or shared schemas, subresources and printer columns, conversion, the API
approval of protected groups, and on update the immutable fields and stored versions.

Upstream validates the internal form of a CRD, into which a v1 CRD whose versions all carry the
same schema (or subresources, or columns) converts with that part moved to the top level. So
a single-version CRD's schema errors are reported under `spec.validation.openAPIV3Schema`, and
a multi-version one's under `spec.versions[i].schema.openAPIV3Schema`; this module words its
paths the same way. The schema rules themselves are `lks.kube.crdschemarules`.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import urlsplit

from lks.kube import crdschemarules, validation
from lks.kube.errors import Cause

Obj = dict[str, Any]

APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
_COLUMN_TYPES = ["boolean", "date", "integer", "number", "string"]
_COLUMN_FORMATS = ["byte", "date", "date-time", "double", "float", "int32", "int64", "password"]
_REVIEW_VERSIONS = ["v1", "v1beta1"]


def validate(obj: Obj, old: Obj | None = None) -> list[Cause]:
    """Every problem with a CRD being created (`old` None) or updated."""
    spec = obj.get("spec") or {}
    meta = obj.get("metadata") or {}
    names = spec.get("names") or {}
    group, plural = spec.get("group") or "", names.get("plural") or ""
    causes: list[Cause] = []
    name = meta.get("name") or ""
    if name != f"{plural}.{group}":
        causes.append(Cause.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    causes += _spec(spec, (old or {}).get("spec"))
    if old is not None:
        causes += _immutable(spec, old)
    status = obj.get("status") or {}
    causes += _names(status.get("acceptedNames") or {}, "status.acceptedNames")
    causes += _stored_versions(status.get("storedVersions") or [], spec.get("versions") or [])
    causes += _approval(obj, old)
    if spec.get("preserveUnknownFields") is True and not ((old or {}).get("spec") or {}).get("preserveUnknownFields"):
        causes.append(Cause.invalid("spec.preserveUnknownFields", True, "cannot set to true, set "
                                    "x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"))
    return causes


def _spec(spec: Obj, old_spec: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    group = spec.get("group") or ""
    if not group:
        causes.append(Cause.required("spec.group"))
    elif errs := validation.dns_subdomain(group):
        causes.append(Cause.invalid("spec.group", group, ",".join(errs)))
    elif "." not in group:
        causes.append(Cause.invalid("spec.group", group, "should be a domain with at least one dot"))
    causes += _enum("spec.scope", spec.get("scope") or "", ["Cluster", "Namespaced"])
    versions = [v if isinstance(v, dict) else {} for v in spec.get("versions") or []]
    shared_schema = _shared(versions, "schema")
    shared_subs = _shared(versions, "subresources")
    shared_columns = _shared(versions, "additionalPrinterColumns")
    if not (shared_schema and (versions[0].get("schema") or {}).get("openAPIV3Schema")):
        for i, v in enumerate(versions):
            if not (v.get("schema") or {}).get("openAPIV3Schema"):
                causes.append(Cause.required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"))
    old_versions = {v.get("name"): v for v in (old_spec or {}).get("versions") or [] if isinstance(v, dict)}
    storage, seen, unique = 0, set(), True
    for i, v in enumerate(versions):
        at, vname = f"spec.versions[{i}]", v.get("name") or ""
        storage += v.get("storage") is True
        unique = unique and vname not in seen
        seen.add(vname)
        if errs := validation.dns1035_label(vname):
            causes.append(Cause.invalid(f"{at}.name", vname, ",".join(errs)))
        causes += _deprecation(v, at)
        if not shared_schema and _changed(v, old_versions.get(vname), "schema"):
            causes += _schema(v.get("schema"), f"{at}.schema", _status_on(versions, i, shared_subs))
        if not shared_subs:
            causes += _subresources(v.get("subresources"), f"{at}.subresources")
        if not shared_columns:
            causes += _columns(v.get("additionalPrinterColumns"), f"{at}.additionalPrinterColumns")
    if not unique:
        causes.append(Cause.invalid("spec.versions", versions, "must contain unique version names"))
    if storage != 1:
        causes.append(Cause.invalid("spec.versions", versions, "must have exactly one version marked as storage version"))
    names = spec.get("names") or {}
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            causes.append(Cause.required(f"spec.names.{key}"))
    causes += _names(names, "spec.names")
    if versions:
        first = versions[0]
        old_list = [v for v in (old_spec or {}).get("versions") or [] if isinstance(v, dict)]
        old_shared = old_list[0] if _shared(old_list, "schema") else None
        if shared_schema and _changed(first, old_shared, "schema"):
            any_status = any("status" in (v.get("subresources") or {}) for v in versions)
            causes += _schema(first.get("schema"), "spec.validation", any_status)
        if shared_subs:
            causes += _subresources(first.get("subresources"), "spec.subresources")
        if shared_columns:
            causes += _columns(first.get("additionalPrinterColumns"), "spec.additionalPrinterColumns")
    causes += _conversion(spec.get("conversion"))
    return causes


def _shared(versions: list[Obj], key: str) -> bool:
    """Whether every version carries the same `key` (which then moves to the top level)."""
    return bool(versions) and all(v.get(key) == versions[0].get(key) for v in versions)


def _changed(v: Obj, old: Obj | None, key: str) -> bool:
    """Whether a version's `key` differs from the stored CRD's: an unchanged schema is not
    judged again by rules added since it was accepted (upstream ratchets the same way)."""
    return old is None or v.get(key) != old.get(key)


def _status_on(versions: list[Obj], i: int, shared_subs: bool) -> bool:
    subs = (versions[0] if shared_subs else versions[i]).get("subresources") or {}
    return isinstance(subs, dict) and subs.get("status") is not None


def _schema(validation_: Any, path: str, status_enabled: bool) -> list[Cause]:
    schema = (validation_ or {}).get("openAPIV3Schema") if isinstance(validation_, dict) else None
    if schema is None:
        return []
    return crdschemarules.check(schema, f"{path}.openAPIV3Schema", status_enabled=status_enabled)


def _enum(field: str, value: str, accepted: list[str]) -> list[Cause]:
    if not value:
        return [Cause.required(field)]
    return [] if value in accepted else [Cause.not_supported(field, value, accepted)]


def _names(names: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("plural", "singular"):
        value = names.get(key) or ""
        if value and (errs := validation.dns1035_label(value)):
            causes.append(Cause.invalid(f"{path}.{key}", value, ",".join(errs)))
    for key in ("kind", "listKind"):
        value = names.get(key) or ""
        if value and (errs := validation.dns1035_label(value.lower())):
            causes.append(Cause.invalid(f"{path}.{key}", value,
                                        "may have mixed case, but should otherwise match: " + ",".join(errs)))
    for i, short in enumerate(names.get("shortNames") or []):
        if errs := validation.dns1035_label(short):
            causes.append(Cause.invalid(f"{path}.shortNames[{i}]", short, ",".join(errs)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        causes.append(Cause.invalid(f"{path}.listKind", names["listKind"], "kind and listKind may not be the same"))
    for i, category in enumerate(names.get("categories") or []):
        if errs := validation.dns1035_label(category):
            causes.append(Cause.invalid(f"{path}.categories[{i}]", category, ",".join(errs)))
    return causes


def _deprecation(v: Obj, path: str) -> list[Cause]:
    warning = v.get("deprecationWarning")
    if warning is None:
        return []
    field = f"{path}.deprecationWarning"
    if not v.get("deprecated"):
        return [Cause.invalid(field, warning, "can only be set for deprecated versions")]
    causes = []
    if len(warning.encode()) > 256:
        causes.append(Cause.invalid(field, warning, "must be <= 256 characters long"))
    if not warning:
        causes.append(Cause.invalid(field, warning, "must not be an empty string"))
    for i, ch in enumerate(warning):
        if unicodedata.category(ch)[0] in "CZ" and ch != " ":  # not Go's unicode.IsPrint
            at = len(warning[:i].encode())
            causes.append(Cause.invalid(field, warning, "must only contain printable UTF-8 characters; "
                                                        f"non-printable character found at index {at}"))
            break
    return causes


def _subresources(subs: Any, path: str) -> list[Cause]:
    scale = subs.get("scale") if isinstance(subs, dict) else None
    if not isinstance(scale, dict):
        return []
    causes: list[Cause] = []
    for key, prefixes, where in (("specReplicasPath", (".spec.",), ".spec"),
                                 ("statusReplicasPath", (".status.",), ".status")):
        value, field = scale.get(key) or "", f"{path}.scale.{key}"
        if not value:
            causes.append(Cause.required(field))
        elif errs := _simple_json_path(value, field):
            causes += errs
        elif not value.startswith(prefixes):
            causes.append(Cause.invalid(field, value, f"should be a json path under {where}"))
    selector, field = scale.get("labelSelectorPath") or "", f"{path}.scale.labelSelectorPath"
    if selector:
        if errs := _simple_json_path(selector, field):
            causes += errs
        elif not selector.startswith((".spec.", ".status.")):
            causes.append(Cause.invalid(field, selector, "should be a json path under either .spec or .status"))
    return causes


def _simple_json_path(s: str, field: str) -> list[Cause]:
    if not s:
        return [Cause.invalid(field, s, "must not be empty")]
    if s[0] != ".":
        return [Cause.invalid(field, s, "must be a simple json path starting with .")]
    return []


def _columns(columns: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, col in enumerate(columns if isinstance(columns, list) else []):
        at = f"{path}[{i}]"
        col = col if isinstance(col, dict) else {}
        if not col.get("name"):
            causes.append(Cause.required(f"{at}.name"))
        t = col.get("type") or ""
        if not t:
            causes.append(Cause.required(f"{at}.type", "must be one of " + ",".join(_COLUMN_TYPES)))
        elif t not in _COLUMN_TYPES:
            causes.append(Cause.invalid(f"{at}.type", t, "must be one of " + ",".join(_COLUMN_TYPES)))
        fmt = col.get("format") or ""
        if fmt and fmt not in _COLUMN_FORMATS:
            causes.append(Cause.invalid(f"{at}.format", fmt, "must be one of " + ",".join(_COLUMN_FORMATS)))
        json_path = col.get("jsonPath") or ""
        if not json_path:
            causes.append(Cause.required(f"{at}.JSONPath"))  # upstream names the internal field
        else:
            causes += _simple_json_path(json_path, f"{at}.JSONPath")
    return causes


def _conversion(conversion: Any) -> list[Cause]:
    if not isinstance(conversion, dict):
        return []
    strategy = conversion.get("strategy") or ""
    causes = _enum("spec.conversion.strategy", strategy, ["None", "Webhook"])
    webhook = conversion.get("webhook") if isinstance(conversion.get("webhook"), dict) else {}
    client = webhook.get("clientConfig")
    review = webhook.get("conversionReviewVersions") or []
    if strategy == "Webhook":
        if not isinstance(client, dict):
            causes.append(Cause.required("spec.conversion.webhookClientConfig", "required when strategy is set to "
                                                                               "Webhook"))
        elif (client.get("url") is None) == (client.get("service") is None):
            causes.append(Cause.required("spec.conversion.webhookClientConfig", "exactly one of url or service is "
                                                                               "required"))
        field = "spec.conversion.conversionReviewVersions"
        if not review:
            causes.append(Cause.required(field))
        elif not any(v in _REVIEW_VERSIONS for v in review):
            causes.append(Cause.invalid(field, review, "must include at least one of " + ", ".join(_REVIEW_VERSIONS)))
    else:
        if client is not None:
            causes.append(Cause.forbidden("spec.conversion.webhookClientConfig",
                                          "should not be set when strategy is not set to Webhook"))
        if review:
            causes.append(Cause.forbidden("spec.conversion.conversionReviewVersions",
                                          "should not be set when strategy is not set to Webhook"))
    return causes


def _immutable(spec: Obj, old: Obj) -> list[Cause]:
    old_spec = old.get("spec") or {}
    fields = [("spec.scope", ("scope",)), ("spec.names.kind", ("names", "kind"))] if condition_true(old, "Established") else []
    fields += [("spec.group", ("group",)), ("spec.names.plural", ("names", "plural"))]  # they name the resource
    causes = []
    for field, keys in fields:
        new, was = _dig(spec, keys), _dig(old_spec, keys)
        if new != was:
            causes.append(Cause.invalid(field, new, "field is immutable"))
    return causes


def _dig(obj: Obj, keys: tuple[str, ...]) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None  # type: ignore[assignment]
    return obj


def condition_true(crd: Obj, type_: str) -> bool:
    """Whether the CRD's condition `type_` (Established, Terminating …) is True."""
    return any(c.get("type") == type_ and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [] if isinstance(c, dict))


def _stored_versions(stored: list[str], versions: list[Obj]) -> list[Cause]:
    if not stored:
        return [crdschemarules.invalid_strings("status.storedVersions", None, "must have at least one stored version")]
    names = {v.get("name") for v in versions if isinstance(v, dict)}
    causes = []
    for v in versions:
        if isinstance(v, dict) and v.get("storage") and v.get("name") not in stored:
            causes.append(crdschemarules.invalid_strings("status.storedVersions", stored,
                                                         f"must have the storage version {v['name']}"))
    for i, name in enumerate(stored):
        if name not in names:
            causes.append(Cause.invalid(
                f"status.storedVersions[{i}]", name,
                f"missing from spec.versions; {name} was previously a storage version, and must remain in "
                f"spec.versions until a storage migration ensures no data remains persisted in {name} and "
                f"removes {name} from status.storedVersions"))
    return causes


def _protected(group: str) -> bool:
    return group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))


def _approval_state(annotations: Obj) -> tuple[str, str]:
    value = str(annotations.get(APPROVAL_ANNOTATION) or "")
    if not value:
        return "missing", (f'protected groups must have approval annotation "{APPROVAL_ANNOTATION}", see '
                           "https://github.com/kubernetes/enhancements/pull/1111")
    if value.startswith("unapproved"):
        return "bypassed", f'not approved: "{value}"'
    url = urlsplit(value)
    if url.scheme and url.netloc:
        return "approved", f"approved in {value}"
    return "invalid", (f'protected groups must have approval annotation "{APPROVAL_ANNOTATION}" with either a URL '
                       'or a reason starting with "unapproved", see https://github.com/kubernetes/enhancements/pull/1111')


def _approval(obj: Obj, old: Obj | None) -> list[Cause]:
    """Groups under k8s.io and kubernetes.io belong to the Kubernetes project: a CRD there must
    say where its API was approved."""
    if not _protected((obj.get("spec") or {}).get("group") or ""):
        return []
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    state, reason = _approval_state(annotations)
    if old is not None and _approval_state((old.get("metadata") or {}).get("annotations") or {})[0] == state:
        return []
    field = f"metadata.annotations[{APPROVAL_ANNOTATION}]"
    if state == "missing":
        return [Cause.required(field, reason)]
    if state == "invalid":
        return [Cause.invalid(field, annotations.get(APPROVAL_ANNOTATION), reason)]
    return []
