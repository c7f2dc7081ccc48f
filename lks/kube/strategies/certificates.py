"""CertificateSigningRequests (upstream's `pkg/registry/certificates/certificates/strategy.go`):
a request never changes after creation, whatever an update sends; `/status` only sets the
issued certificate and `/approval` only the conditions. The rules themselves are
`lks.kube.typevalidation.certificates`'."""

from __future__ import annotations

import copy
import time
from typing import Any

from lks.clock import rfc3339
from lks.kube.errors import Cause
from lks.kube.strategies.base import Obj, StatusStrategy, Strategy
from lks.kube.typevalidation import certificates


class CSRStrategy(Strategy):
    tracks_generation = False

    def record_requester(self, obj: Obj, user: Any) -> None:
        """The requester's identity goes into the spec, never what the body claims."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        for key in ("username", "uid", "groups", "extra"):
            spec.pop(key, None)
        if user is not None:
            spec["username"] = user.name
            if user.groups:
                spec["groups"] = list(user.groups)

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        super().prepare_for_update(obj, old)  # keeps the status
        _keep(obj, old, "spec")

    def for_subresource(self, name: str) -> Any:
        if name in ("status", "approval"):
            return _SubresourceStrategy(self, name)
        return super().for_subresource(name)


def _keep(obj: Obj, old: Obj, key: str) -> None:
    if key in old:
        obj[key] = copy.deepcopy(old[key])
    else:
        obj.pop(key, None)


class _SubresourceStrategy(StatusStrategy):
    """`/status` keeps the stored conditions, `/approval` everything of the status but them."""

    def __init__(self, parent: Strategy, name: str):
        super().__init__(parent)
        self.name = name

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        sent = obj.get("status") or {}
        super().prepare_for_update(obj, old)  # everything but the status as stored
        stored = old.get("status") or {}
        conditions = sent.get("conditions")
        if self.name == "status":
            # the signer sets the certificate and conditions such as Failed; Approved and
            # Denied stay as stored (upstream's preserveConditionInstances)
            status = {k: v for k, v in sent.items() if k != "conditions"}
            conditions = [c for c in conditions or [] if not _decision(c)] + \
                [c for c in stored.get("conditions") or [] if _decision(c)]
        else:
            status = {k: copy.deepcopy(v) for k, v in stored.items() if k != "conditions"}
        if conditions:
            status["conditions"] = _stamped(conditions, stored.get("conditions") or [])
        obj["status"] = status

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return certificates.validate_csr_update(obj, old, subresource=self.name)


def _decision(condition: Any) -> bool:
    return isinstance(condition, dict) and condition.get("type") in ("Approved", "Denied")


def _stamped(conditions: list, stored: list) -> list:
    """`populateConditionTimestamps`: a condition without times gets now, or the transition time
    of a stored condition of the same type and status."""
    now = rfc3339(time.time())
    out = []
    for c in conditions:
        if isinstance(c, dict):
            c = {**c, "lastUpdateTime": c.get("lastUpdateTime") or now}
            if not c.get("lastTransitionTime"):
                c["lastTransitionTime"] = next(
                    (o["lastTransitionTime"] for o in stored if isinstance(o, dict) and o.get("type") == c.get("type")
                     and o.get("status") == c.get("status") and o.get("lastTransitionTime")), now)
        out.append(c)
    return out
