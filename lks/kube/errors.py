"""Kubernetes API errors: every failure the API server answers is an `APIError` carrying a
`Status` object with upstream's code, reason and message wording.

Store errors are converted here once (`from_store_error`); handlers never build error JSON.
The HTTP layer (`lks.kube.http`) turns an `APIError` into a response.
"""

from __future__ import annotations

from typing import Any

from lks import store

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's request body limit


class APIError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:  # upstream's StatusReasonUnknown ("") is left out
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def qualified(resource: str, group: str) -> str:
    """`pods` or `deployments.apps`, as upstream names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def _details(resource: str, group: str, name: str | None, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource  # upstream puts the resource here, not the kind
    details.update(extra)
    return details


def not_found(resource: str, group: str, name: str) -> APIError:
    return APIError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
        details=_details(resource, group, name),
    )


def already_exists(resource: str, group: str, name: str) -> APIError:
    return APIError(
        409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
        details=_details(resource, group, name),
    )


def forbidden(resource: str, group: str, name: str, why: str, **extra: Any) -> APIError:
    """403 as upstream's NewForbidden words it: `pods "web-1" is forbidden: <why>`."""
    return APIError(
        403, "Forbidden", f'{qualified(resource, group)} "{name}" is forbidden: {why}',
        details=_details(resource, group, name, **extra),
    )


def conflict(resource: str, group: str, name: str, why: str) -> APIError:
    return APIError(
        409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        details=_details(resource, group, name),
    )


MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


class Cause(dict):
    """One field error of an Invalid status: `{"reason", "message", "field"}`."""

    @classmethod
    def invalid(cls, field: str, value: Any, detail: str) -> Cause:
        return cls(reason="FieldValueInvalid", message=f"Invalid value: {_show(value)}: {detail}", field=field)

    @classmethod
    def required(cls, field: str, detail: str = "") -> Cause:
        msg = "Required value" + (f": {detail}" if detail else "")
        return cls(reason="FieldValueRequired", message=msg, field=field)

    @classmethod
    def forbidden(cls, field: str, detail: str) -> Cause:
        return cls(reason="FieldValueForbidden", message=f"Forbidden: {detail}", field=field)

    @classmethod
    def not_supported(cls, field: str, value: Any, supported: list[str]) -> Cause:
        values = ", ".join(f'"{v}"' for v in supported)
        return cls(
            reason="FieldValueNotSupported",
            message=f"Unsupported value: {_show(value)}: supported values: {values}",
            field=field,
        )

    @classmethod
    def type_invalid(cls, field: str, value: Any, detail: str) -> Cause:
        return cls(reason="FieldValueTypeInvalid", message=f"Invalid value: {_show(value)}: {detail}", field=field)

    def text(self) -> str:
        return f"{self['field']}: {self['message']}" if self.get("field") else self["message"]


def _show(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return '"' + ("object" if isinstance(value, dict) else "array") + '"'
    return str(value)


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> APIError:
    """422 Invalid, worded like upstream's `errors.NewInvalid` (an aggregate of field errors)."""
    texts = [c.text() for c in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return APIError(
        422, "Invalid", f'{kind}{"." + group if group else ""} "{name}" is invalid: {summary}',
        details=_details(kind, group, name, causes=[dict(c) for c in causes]),
    )


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def method_not_allowed() -> APIError:
    return APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def not_acceptable(accepted: str) -> APIError:
    return APIError(406, "NotAcceptable", f"only the following media types are accepted: {accepted}")


def unsupported_media_type(content_type: str, accepted: list[str]) -> APIError:
    return APIError(
        415, "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
    )


def too_large() -> APIError:
    return APIError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY_BYTES}")


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def path_not_found(path: str) -> APIError:
    """The bare 404 upstream gives for a URL that names no resource."""
    return APIError(404, "NotFound", "the server could not find the requested resource", details={})


def expired(message: str) -> APIError:
    return APIError(410, "Expired", message)


def too_old(revision: int, oldest: int) -> APIError:
    return expired(f"too old resource version: {revision} ({oldest})")


def continue_expired() -> APIError:
    return expired(
        "The provided continue parameter is too old to display a consistent list result. You can start a "
        "new list without the continue parameter, or use the continue token in this response to retrieve "
        "the remainder of the results. Continuing with the provided token results in an inconsistent list "
        "- objects that were created, modified, or deleted between the time the first chunk was returned "
        "and now may show up in the list."
    )


def timeout(message: str, *, retry_after: int = 0, causes: list[dict[str, str]] | None = None) -> APIError:
    """upstream's `NewTimeoutError`: 504, the message prefixed with "Timeout: "."""
    details: dict[str, Any] = {}
    if causes:
        details["causes"] = causes
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return APIError(504, "Timeout", f"Timeout: {message}", details=details,
                    headers={"Retry-After": str(retry_after)} if retry_after else None)


def server_timeout(resource: str, group: str, operation: str) -> APIError:
    """upstream's `NewServerTimeout`, its answer when the storage cannot be reached: a 500 that
    tells the client to retry after two seconds (client-go does, with the Retry-After header)."""
    return APIError(
        500, "ServerTimeout",
        f"The {operation} operation against {qualified(resource, group)} could not be completed at this time, "
        "please try again.",
        details=_details(resource, group, operation, retryAfterSeconds=2), headers={"Retry-After": "2"},
    )


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


# The operation upstream's storage error names, by request verb.
_OPERATIONS = {"patch": "update", "deletecollection": "delete", "watch": "list"}


def from_store_error(err: store.StoreError, resource: str, group: str, name: str, *, verb: str = "get") -> APIError:
    """The one place store errors become API errors (upstream's `storage/errors` interpreters;
    `verb` is the request's, for the operation a storage outage names)."""
    if isinstance(err, store.KeyExists):
        return already_exists(resource, group, name)
    if isinstance(err, store.NotFound):
        return not_found(resource, group, name)
    if isinstance(err, store.RevisionConflict):
        return conflict(resource, group, name, MODIFIED)
    if isinstance(err, store.Compacted):
        return too_old(err.revision, err.compact_revision)
    if isinstance(err, store.FutureRevision):  # the cacher's, retried after a second
        return timeout(f"Too large resource version: {err.revision}, current: {err.current}", retry_after=1,
                       causes=[{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}])
    if isinstance(err, store.Unavailable):  # upstream's ErrCodeUnreachable
        return server_timeout(resource, group, _OPERATIONS.get(verb, verb))
    if isinstance(err, store.Timeout):  # the request's deadline passed waiting for the store
        return timeout("request did not complete within requested timeout - context deadline exceeded")
    return internal(str(err))
