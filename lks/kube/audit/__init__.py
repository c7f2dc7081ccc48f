"""The audit log of the hosted API servers (upstream's `k8s.io/apiserver/pkg/audit`): one
`audit.k8s.io/v1` Event per request and stage, as JSON lines in the cluster's own file,
`$LKS_HOME/clusters/<id>/audit.log`, rotated by size (`audit.log.1` ... `.5`).

What is logged follows an `audit.k8s.io/v1` Policy (`policy`), read once per cluster from
`$LKS_HOME/clusters/<id>/audit-policy.yaml`, else `$LKS_HOME/audit-policy.yaml`, else
`DEFAULT_POLICY` (AKS-like: reads of events and the health and version endpoints not at all,
everything else at Metadata, no RequestReceived stage). Rules match as upstream's policy checker
(users, userGroups, verbs, resources with `*`, `*/sub`, `res/*` and resourceNames, namespaces,
nonResourceURLs with a trailing `*`); no rule matching means level None.

The HTTP layer (`lks.kube.http.app`) calls `start` as a request arrives (every response gets
an `Audit-Id` header), `begin` once it knows the user and the RequestInfo (or `unauthenticated`
for a credential nobody knows: upstream's failed-authentication event), `response_started`
when a watch sends its headers, and `finish` with the response. Admission plugins and the
authorizer add annotations with `annotate`, through a context variable, so nothing needs
passing down. A request at level None builds nothing; events are queued on the request path
and written in batches from a thread a moment later (`sink`).
"""

from __future__ import annotations

import contextvars
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lks.kube.audit.policy import (
    DEFAULT_POLICY,
    LEVELS,
    STAGES,
    Policy,
    PolicyError,
    Rule,
    load_policy,
    parse_policy,
)
from lks.kube.audit.sink import Sink
from lks.kube.authn import User

if TYPE_CHECKING:
    from aiohttp import web

    from lks.kube.http.requestinfo import RequestInfo

__all__ = ["DEFAULT_POLICY", "LEVELS", "STAGES", "Auditor", "Policy", "PolicyError", "Record", "Rule", "Sink",
           "annotate", "authorized", "impersonated", "load_policy", "parse_policy", "request_body"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Record:
    """What the audit log knows of one request so far."""

    audit_id: str
    received: float
    level: str = "None"
    omit: frozenset[str] = frozenset()
    omit_managed_fields: bool = False
    sink: Sink | None = None
    prefix: str = ""  # the cluster's path prefix, which upstream's requestURI has not
    user: User | None = None  # as authenticated
    impersonated: User | None = None
    info: RequestInfo | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


_NOBODY = User("", ())  # who a request that failed authentication is, to the policy

_CURRENT: contextvars.ContextVar[Record | None] = contextvars.ContextVar("audit_record", default=None)


def annotate(key: str, value: str) -> None:
    """Add an audit annotation to the request being served, if it is audited (the first value
    of a key stays, as upstream's AddAuditAnnotation)."""
    rec = _CURRENT.get()
    if rec is not None and rec.level != "None":
        rec.annotations.setdefault(key, value)


def authorized(allowed: bool, reason: str) -> None:
    """The authorizer's decision, as upstream's audit annotations name it."""
    rec = _CURRENT.get()
    if rec is not None and rec.level != "None":
        rec.annotations["authorization.k8s.io/decision"] = "allow" if allowed else "forbid"
        rec.annotations["authorization.k8s.io/reason"] = reason


def impersonated(user: User) -> None:
    """The user the request acts as (Impersonate-* headers)."""
    rec = _CURRENT.get()
    if rec is not None and rec.level != "None":
        rec.impersonated = user


def request_body(body: bytes) -> None:
    """The request's body, kept for the requestObject of Request-level events (and the name of
    a created object)."""
    rec = _CURRENT.get()
    if rec is not None and rec.level != "None":
        rec.body = body


class Auditor:
    """The audit logs of the clusters one HTTP layer serves; `home` None: auditing is off."""

    def __init__(self, home: Path | None):
        self.home = home
        self._clusters: dict[str, tuple[Policy, Sink]] = {}

    def _of(self, cluster_id: str) -> tuple[Policy, Sink]:
        found = self._clusters.get(cluster_id)
        if found is None:
            assert self.home is not None
            folder = self.home / "clusters" / cluster_id
            try:
                policy = load_policy(folder / "audit-policy.yaml", self.home / "audit-policy.yaml")
            except (PolicyError, OSError, ValueError) as err:
                log.error("audit policy of cluster %s: %s; auditing it with the default policy", cluster_id, err)
                policy = parse_policy(DEFAULT_POLICY)
            found = self._clusters[cluster_id] = (policy, Sink(folder / "audit.log"))
        return found

    def start(self, request: web.Request) -> None:
        """A request arrives: its record, with its audit ID (the client's `Audit-ID`, else new)."""
        _CURRENT.set(Record(request.headers.get("Audit-ID") or _new_id(), time.time()))

    def begin(self, cluster_id: str, user: User, info: RequestInfo) -> None:
        """The authenticated user and the request are known: choose the level, and log the
        RequestReceived stage unless the policy omits it."""
        rec = _CURRENT.get()
        if self.home is None or rec is None:
            return
        policy, sink = self._of(cluster_id)
        level, omit, rec.omit_managed_fields = policy.level_of(user, info.verb, info)
        if level == "None":
            return
        rec.level, rec.omit, rec.sink, rec.user, rec.info = level, omit, sink, user, info
        rec.prefix = f"/clusters/{cluster_id}"
        if "RequestReceived" not in omit:
            sink.write(self._event(rec, "RequestReceived", None, None, None))

    def unauthenticated(self, cluster_id: str, info: RequestInfo, request: web.Request) -> None:
        """A request whose credential nobody knows: one ResponseStarted event with no user, as
        upstream's failed-authentication audit (the policy sees a user in no group)."""
        rec = _CURRENT.get()
        if self.home is None or rec is None:
            return
        policy, sink = self._of(cluster_id)
        level, omit, _ = policy.level_of(_NOBODY, info.verb, info)
        if level == "None" or "ResponseStarted" in omit:
            return
        rec.level, rec.user, rec.info, rec.prefix = level, _NOBODY, info, f"/clusters/{cluster_id}"
        tried = [m for m, used in (("bearer", request.headers.get("Authorization", "").lower().startswith("bearer ")),
                                   ("x509", _has_client_certificate(request))) if used]
        message = (f"Authentication failed, attempted: {', '.join(tried)}" if tried
                   else "Authentication failed, no credentials provided")
        sink.write(self._event(rec, "ResponseStarted", request, 401, None, message=message))

    @staticmethod
    def headers() -> dict[str, str]:
        """The headers every response carries: `Audit-Id`."""
        rec = _CURRENT.get()
        return {"Audit-Id": rec.audit_id} if rec is not None else {}

    def response_started(self, request: web.Request) -> None:
        """A long-running response (a watch) sent its headers."""
        rec = _CURRENT.get()
        if rec is not None and rec.sink is not None and "ResponseStarted" not in rec.omit:
            rec.sink.write(self._event(rec, "ResponseStarted", request, 200, None))

    def prepared(self, request: web.Request, response: web.StreamResponse) -> None:
        """A response of a cluster path sends its headers (aiohttp's on_response_prepare): one
        without an Audit-Id yet is a stream its handler prepared itself (logs, exec, attach,
        port-forward): it gets its Audit-Id, and its long-running request a ResponseStarted."""
        rec = _CURRENT.get()
        if rec is None or "Audit-Id" in response.headers or not request.path.startswith("/clusters/"):
            return
        response.headers["Audit-Id"] = rec.audit_id
        self.response_started(request)

    def finish(self, request: web.Request, response: web.StreamResponse | None) -> None:
        """The response is ready (None: the client went away): stamp its Audit-Id and log the
        ResponseComplete stage."""
        rec = _CURRENT.get()
        if rec is None:
            return
        if response is not None and not response.prepared:
            response.headers["Audit-Id"] = rec.audit_id
        if rec.sink is None or "ResponseComplete" in rec.omit:
            return
        status = response.status if response is not None else 499
        rec.sink.write(self._event(rec, "ResponseComplete", request, status, response))

    async def close(self) -> None:
        for _policy, sink in self._clusters.values():
            await sink.drain()

    # -- events

    def _event(self, rec: Record, stage: str, request: web.Request | None, status: int | None,
               response: web.StreamResponse | None, *, message: str | None = None) -> bytes:
        info = rec.info
        assert info is not None and rec.user is not None
        req = request
        ev: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": rec.level,
                              "auditID": rec.audit_id, "stage": stage}
        if req is not None:
            uri = req.raw_path
            ev["requestURI"] = uri[len(rec.prefix):] if uri.startswith(rec.prefix) else uri
        ev["verb"] = info.verb
        ev["user"] = rec.user.info() if rec.user is not _NOBODY else {}
        if req is not None:
            if rec.impersonated is not None:
                ev["impersonatedUser"] = rec.impersonated.info()
            forwarded = [ip.strip() for ip in req.headers.get("X-Forwarded-For", "").split(",") if ip.strip()]
            ev["sourceIPs"] = [*forwarded, *([req.remote] if req.remote and req.remote not in forwarded else [])]
            if agent := req.headers.get("User-Agent"):
                ev["userAgent"] = agent
        if info.is_resource:
            ev["objectRef"] = self._object_ref(rec, info)
        if status is not None:
            ev["responseStatus"] = _status(status, response)
            if message is not None:
                ev["responseStatus"] = {"metadata": {}, "message": message, "code": status}
        if rec.level in ("Request", "RequestResponse") and rec.body and info.verb in (
                "create", "update", "patch", "delete", "deletecollection"):
            if (obj := _json(rec.body)) is not None:
                ev["requestObject"] = _without_managed_fields(obj) if rec.omit_managed_fields else obj
        if rec.level == "RequestResponse" and stage == "ResponseComplete" and response is not None:
            body = getattr(response, "body", None)
            if isinstance(body, bytes | bytearray) and (obj := _json(bytes(body))) is not None:
                ev["responseObject"] = _without_managed_fields(obj) if rec.omit_managed_fields else obj
        ev["requestReceivedTimestamp"] = _micro(rec.received)
        ev["stageTimestamp"] = _micro(time.time()) if stage != "RequestReceived" else ev["requestReceivedTimestamp"]
        if rec.annotations:
            ev["annotations"] = rec.annotations
        return orjson.dumps(ev) + b"\n"

    @staticmethod
    def _object_ref(rec: Record, info: RequestInfo) -> dict[str, Any]:
        ref: dict[str, Any] = {"resource": info.resource}
        if info.namespace:
            ref["namespace"] = info.namespace
        name = info.name
        if not name and info.verb == "create" and rec.body:  # upstream takes a new object's name from the body
            obj = _json(rec.body)
            name = ((obj or {}).get("metadata") or {}).get("name") if isinstance(obj, dict) else None
        if name:
            ref["name"] = name
        if info.group:
            ref["apiGroup"] = info.group
        if info.version:
            ref["apiVersion"] = info.version
        if info.subresource:
            ref["subresource"] = info.subresource
        return ref


def _status(code: int, response: web.StreamResponse | None) -> dict[str, Any]:
    """upstream's responseStatus: the code, and for a failure the Status's bounded fields."""
    out: dict[str, Any] = {"metadata": {}, "code": code}
    if code >= 400 and response is not None:
        body = getattr(response, "body", None)
        obj = _json(bytes(body)) if isinstance(body, bytes | bytearray) else None
        if isinstance(obj, dict) and obj.get("kind") == "Status":
            out = {"metadata": {}, **{k: obj[k] for k in ("status", "message", "reason", "details") if k in obj},
                   "code": code}
    return out


def _without_managed_fields(obj: Any) -> Any:
    """The object (or each item of a list) without metadata.managedFields (omitManagedFields)."""
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            meta.pop("managedFields", None)
        for item in obj.get("items") or [] if isinstance(obj.get("items"), list) else []:
            _without_managed_fields(item)
    return obj


def _has_client_certificate(request: web.Request) -> bool:
    ssl_obj = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
    return ssl_obj is not None and ssl_obj.getpeercert(binary_form=True) is not None


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _new_id() -> str:
    """A random (version 4) UUID. An audit ID needs to be unique, not unguessable: the fast
    generator will do (os.urandom, which uuid.uuid4 reads, costs ten times more)."""
    n = (random.getrandbits(128) & ~(0xF000 << 64) & ~(0xC << 60)) | (0x4000 << 64) | (0x8 << 60)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_SECOND: list[Any] = [-1, ""]  # the last whole second formatted (strftime is most of an event's cost)


def _micro(ts: float) -> str:
    """upstream's MicroTime: 2006-01-02T15:04:05.000000Z."""
    sec = int(ts)
    if sec != _SECOND[0]:
        _SECOND[0], _SECOND[1] = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_SECOND[1]}.{int((ts - sec) * 1_000_000):06d}Z"
