"""Query parameters as kube-apiserver reads them: its parameter codec converts `url.Values` into
the options types (`runtime.Convert_Slice_string_To_*`, used by meta/v1's generated conversions)
and the handlers validate the result (`ValidateCreateOptions` and friends).

- the first value of a parameter counts;
- a boolean is false only for "0" or "false" (any case); anything else, "" included, is true;
- an integer is Go's `strconv.ParseInt(s, 10, 64)`: a sign and ASCII digits within int64, else a
  400 worded as Go's error (``strconv.ParseInt: parsing "x": invalid syntax``);
- dryRun, fieldManager and fieldValidation are checked together into one 422 on the request's
  options kind (``CreateOptions.meta.k8s.io "" is invalid: ...``).

The HTTP layer (`lks.kube.http.app`, `requestinfo`) and `lks.kube.deletion` (DeleteOptions from the
query) read parameters through here.
"""

from __future__ import annotations

import re
from typing import Any

from lks.kube import errors, fieldmanager, structural

_INT = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
FIELD_VALIDATIONS = ("", "Ignore", "Strict", "Warn")  # sorted, as upstream lists them


def values(q: Any, name: str) -> list[str]:
    """Every value of `name` in a multidict (a request's query), or a plain mapping's one."""
    if hasattr(q, "getall"):
        return q.getall(name, [])
    return [q[name]] if name in q else []


def first(q: Any, name: str) -> str | None:
    found = values(q, name)
    return found[0] if found else None


def boolean(q: Any, name: str) -> bool | None:
    """`Convert_Slice_string_To_Pointer_bool`; None when the parameter is absent."""
    raw = first(q, name)
    if raw is None:
        return None
    return not (raw == "0" or raw.casefold() == "false")


def int64(q: Any, name: str) -> int | None:
    """`Convert_Slice_string_To_Pointer_int64`; None when the parameter is absent."""
    raw = first(q, name)
    return None if raw is None else parse_int64(raw)


def parse_int64(text: str) -> int:
    if not _INT.fullmatch(text):
        raise errors.bad_request(f"strconv.ParseInt: parsing {structural.go_quote(text)}: invalid syntax")
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise errors.bad_request(f"strconv.ParseInt: parsing {structural.go_quote(text)}: value out of range")
    return value


def dry_run_causes(dry_run: list[str]) -> list[errors.Cause]:
    """`ValidateDryRun`: every value must be "All"; the error shows the list as Go prints it."""
    if all(v == "All" for v in dry_run):
        return []
    shown = "[]string{" + ", ".join(structural.go_quote(v) for v in dry_run) + "}"
    return [errors.Cause(reason="FieldValueNotSupported", field="dryRun",
                         message=f'Unsupported value: {shown}: supported values: "All"')]


def validate_write_options(options_kind: str, q: Any, *, apply: bool = False) -> None:
    """`ValidateCreateOptions` / `ValidateUpdateOptions` / `ValidatePatchOptions` of the query:
    fieldManager (and, for patches, force and the apply requirement), dryRun, fieldValidation."""
    causes = fieldmanager.field_manager_causes(options_kind, field_manager=first(q, "fieldManager"), apply=apply,
                                               force=boolean(q, "force"))
    causes += dry_run_causes(values(q, "dryRun"))
    validation = first(q, "fieldValidation")
    if validation is not None and validation not in FIELD_VALIDATIONS:
        causes.append(errors.Cause.not_supported("fieldValidation", validation, list(FIELD_VALIDATIONS)))
    if causes:
        raise errors.invalid(options_kind, "meta.k8s.io", "", causes)
