"""Gatekeeper's mutating webhook (`mutation.gatekeeper.sh`, `pkg/webhook/mutation.go`), answered
in process like the validating one (`lks.kube.webhooks.local`, path `/v1/mutate`): CREATE and
UPDATE requests outside Gatekeeper's own resources and excluded namespaces (the Config's
`mutation` process, and gatekeeper-system) go through `system.System.mutate`; a change comes
back as a JSON patch, a failure as Gatekeeper's 500 (which refuses the request: an answer, not
a call failure, so `failurePolicy: Ignore` does not apply).
"""

from __future__ import annotations

import base64
import copy
import logging
from typing import TYPE_CHECKING, Any

import orjson

from lks.policy.gatekeeper import constraints, manifests
from lks.policy.gatekeeper.mutation import system

if TYPE_CHECKING:
    from lks.policy.gatekeeper.state import State

Obj = dict[str, Any]
log = logging.getLogger(__name__)
SERVICE_ACCOUNT = f"system:serviceaccount:{manifests.NAMESPACE}:gatekeeper-admin"


def _allowed(message: str) -> Obj:
    return {"allowed": True, "status": {"metadata": {}, "code": 200, "message": message}}


class Webhook:
    def __init__(self, state: State, mutation: system.System):
        self.state = state
        self.system = mutation

    async def admit(self, body: bytes) -> tuple[int, bytes]:
        try:
            review = orjson.loads(body)
            request = review["request"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return 400, b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"bad request","code":400}'
        response = await self.respond(request)
        response["uid"] = request.get("uid") or ""
        return 200, orjson.dumps({"apiVersion": review.get("apiVersion") or "admission.k8s.io/v1",
                                  "kind": "AdmissionReview", "response": response})

    async def respond(self, request: Obj) -> Obj:
        if ((request.get("userInfo") or {}).get("username") or "") == SERVICE_ACCOUNT:
            return _allowed("Gatekeeper does not self-manage")
        operation = request.get("operation") or ""
        if operation not in ("CREATE", "UPDATE"):
            return _allowed("Mutating only on create or update")
        kind = request.get("kind") or {}
        group, version, kind_name = kind.get("group") or "", kind.get("version") or "", kind.get("kind") or ""
        if group.endswith(".gatekeeper.sh"):
            return _allowed("Not mutating gatekeeper resources")
        is_namespace = group == "" and kind_name == "Namespace"
        original = request.get("object") or {}
        subject = (original.get("metadata") or {}).get("name") if is_namespace else request.get("namespace")
        if subject and (subject == manifests.NAMESPACE
                        or constraints.any_glob(await self.state.excluded("mutation-webhook"), subject)):
            return _allowed("Namespace is set to be ignored by Gatekeeper config")
        if not self.system.mutators:  # nothing to apply: spare the copy
            return _allowed("Resource was not mutated")
        obj = copy.deepcopy(original)
        meta = obj.setdefault("metadata", {})
        namespace = "" if is_namespace else request.get("namespace") or ""
        had_namespace = "namespace" in meta
        old_namespace = meta.get("namespace")
        meta["namespace"] = namespace
        ns_labels: Obj | None = None
        if is_namespace:
            ns_labels = meta.get("labels") or {}
        elif namespace:
            ns_labels = await self._namespace_labels(namespace)
        try:
            mutated = self.system.mutate(obj, group=group, version=version, kind=kind_name, operation=operation,
                                         namespace_labels=ns_labels)
        except system.MutationError as err:
            log.info("gatekeeper: failed to mutate object: %s", err)
            return {"allowed": False, "status": {"metadata": {}, "code": 500, "message": str(err)}}
        if not mutated:
            return _allowed("Resource was not mutated")
        meta = obj.setdefault("metadata", {})
        if had_namespace:
            meta["namespace"] = old_namespace
        else:
            meta.pop("namespace", None)
        patch = system.json_patch(original, obj)
        return {"allowed": True, "status": {"metadata": {}, "code": 200}, "patchType": "JSONPatch",
                "patch": base64.b64encode(orjson.dumps(patch)).decode()}

    async def _namespace_labels(self, namespace: str) -> Obj:
        reg = self.state.cluster.registry("", "v1", "namespaces")
        ns = (await reg.cache()).objects.get(reg.key(None, namespace)) or {}
        return (ns.get("metadata") or {}).get("labels") or {}
