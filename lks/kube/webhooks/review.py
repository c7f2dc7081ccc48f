"""The AdmissionReview a webhook is sent and what its answer means, as upstream's
`webhook/request` and `webhook/errors`: the request in the first review version the webhook
accepts (v1 or v1beta1), the answer checked (uid, kind, patch only from mutating webhooks),
a denial worded `admission webhook "x" denied the request: ...` with the webhook's code (400 at
least), and a webhook that cannot be called an `Internal error occurred: failed calling webhook`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from lks.kube import errors
from lks.kube.authn import APISERVER
from lks.kube.webhooks import client
from lks.kube.webhooks.hooks import Invocation, Request

Obj = dict[str, Any]

# in-process writers (controllers, node agents) have no user of their own: they are the
# controller manager, which upstream runs with this identity when it uses its own credentials
SERVICE_USER = APISERVER  # a write of the API server itself (a controller's carries its identity)
_REVIEW_VERSIONS = ("v1", "v1beta1")


@dataclass(slots=True)
class Answer:
    allowed: bool
    result: Obj | None
    patch: list | None = None
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)


def review_version(inv: Invocation) -> str:
    for version in inv.hook.review_versions:
        if version in _REVIEW_VERSIONS:
            return version
    raise client.CallError("webhook does not accept known AdmissionReview versions (v1, v1beta1)")


def request(inv: Invocation, req: Request, uid: str = "") -> Obj:
    """The AdmissionRequest without its objects (what a match condition sees as `request`)."""
    group, kind_version, kind = inv.kind
    rt = req.rt
    out: Obj = {
        "uid": uid,
        "kind": {"group": group, "version": kind_version, "kind": kind},
        "resource": {"group": inv.rt.group, "version": inv.rt.version, "resource": inv.rt.resource},
        "requestKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "requestResource": {"group": rt.group, "version": rt.version, "resource": rt.resource},
        "name": req.name,
        "operation": req.operation,
        "userInfo": req.user.info() if req.user is not None else SERVICE_USER.info(),
        "dryRun": req.dry_run,
        **({"options": req.options} if req.options is not None else {}),
    }
    if req.subresource:
        out["subResource"] = out["requestSubResource"] = req.subresource
    if req.namespace:
        out["namespace"] = req.namespace
    return out


def build(inv: Invocation, req: Request, obj: Obj | None, old: Obj | None) -> tuple[str, bytes]:
    """(uid, body) of the AdmissionReview for `inv`; `obj` and `old` in the invocation's version."""
    uid = str(uuid.uuid4())
    version = review_version(inv)
    body = request(inv, req, uid)
    body["object"], body["oldObject"] = obj, old
    review = {"kind": "AdmissionReview", "apiVersion": f"admission.k8s.io/{version}", "request": body}
    return uid, orjson.dumps(review)


def read(inv: Invocation, uid: str, status: int, data: bytes) -> Answer:
    """The webhook's answer (`VerifyAdmissionResponse`); CallError if it is not one."""
    if not 200 <= status < 300:
        raise client.CallError("failed to call webhook: " + _server_error(status, data))
    try:
        review = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise client.CallError(f"failed to call webhook: couldn't get version/kind; json parse error: {err}") from None
    if not isinstance(review, dict):
        raise client.CallError("failed to call webhook: couldn't get version/kind; json parse error: "
                               "json: cannot unmarshal into Go value of type struct")
    version = review_version(inv)
    invalid = "received invalid webhook response: "
    resp = review.get("response")
    if not isinstance(resp, dict):
        raise client.CallError(invalid + "webhook response was absent")
    if version == "v1":
        if resp.get("uid") != uid:
            raise client.CallError(invalid + f'expected response.uid="{uid}", got "{resp.get("uid") or ""}"')
        gvk = (review.get("apiVersion"), review.get("kind"))
        if gvk != ("admission.k8s.io/v1", "AdmissionReview"):
            av = str(gvk[0] or "")
            shown = f"{av if '/' in av else '/' + av}, Kind={gvk[1] or ''}"  # Go's GroupVersionKind.String
            raise client.CallError(invalid + f"expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, "
                                             f"got {shown}")
    patch_b64, patch_type = resp.get("patch"), resp.get("patchType")
    patch = None
    if inv.hook.mutating:
        if version == "v1" and patch_b64 and patch_type is None:
            raise client.CallError(invalid + "webhook returned response.patch but not response.patchType")
        if version == "v1" and not patch_b64 and patch_type is not None:
            raise client.CallError(invalid + "webhook returned response.patchType but not response.patch")
        if patch_b64:
            if version == "v1" and patch_type != "JSONPatch":
                raise client.CallError(f'unsupported patch type "{patch_type}"')
            try:
                patch = orjson.loads(base64.b64decode(patch_b64, validate=True))
            except (binascii.Error, ValueError, TypeError) as err:
                raise client.CallError(f"received undecodable patch in webhook response: {err}") from None
            if not isinstance(patch, list):
                raise client.CallError("received undecodable patch in webhook response: "
                                       "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    elif version == "v1" and patch_b64:
        raise client.CallError(invalid + "validating webhook may not return response.patch")
    elif version == "v1" and patch_type is not None:
        raise client.CallError(invalid + "validating webhook may not return response.patchType")
    result = resp.get("status") if isinstance(resp.get("status"), dict) else None
    warnings = [w for w in resp.get("warnings") or [] if isinstance(w, str)]
    audit = {k: v for k, v in (resp.get("auditAnnotations") or {}).items() if isinstance(v, str)}
    return Answer(resp.get("allowed") is True, result, patch or None, warnings, audit)


def _server_error(status: int, data: bytes) -> str:
    """client-go's wording of a non-2xx answer that is not a Status."""
    try:
        body = orjson.loads(data)
        if isinstance(body, dict) and body.get("kind") == "Status" and body.get("message"):
            return str(body["message"])
    except orjson.JSONDecodeError:
        pass
    if status >= 500 and data:
        return f'an error on the server ("{data[:1024].decode(errors="replace")}") has prevented the request from succeeding'
    return f"the server responded with the status code {status} but did not return more information"


def denied(name: str, result: Obj | None) -> errors.APIError:
    """`ToStatusErr`: the webhook's Status with its message prefixed, code 400 at least."""
    result = dict(result or {})
    code = result.get("code") if isinstance(result.get("code"), int) else 0
    reason = result.get("reason") if isinstance(result.get("reason"), str) else ""
    message = result.get("message") if isinstance(result.get("message"), str) else ""
    denied_by = f'admission webhook "{name}" denied the request'
    if message:
        message = f"{denied_by}: {message}"
    elif reason:
        message = f"{denied_by}: {reason}"
    else:
        message = f"{denied_by} without explanation"
    details = result.get("details") if isinstance(result.get("details"), dict) else None
    return errors.APIError(max(code, 400), reason, message, details=details)


def calling_error(name: str, why: str) -> errors.APIError:
    """A webhook with failurePolicy Fail that could not be called: upstream's NewInternalError."""
    return internal(f'failed calling webhook "{name}": {why}')


def internal(why: str) -> errors.APIError:
    return errors.APIError(500, "InternalError", f"Internal error occurred: {why}",
                           details={"causes": [{"message": why}]})


def dry_run_unsupported(name: str) -> errors.APIError:
    return errors.bad_request(f'admission webhook "{name}" does not support dry run')
