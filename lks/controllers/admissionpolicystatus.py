"""The ValidatingAdmissionPolicy status controller (upstream's
`pkg/controller/validatingadmissionpolicystatus`): each new generation of a policy is type
checked (`lks.kube.policy.typecheck`) and its status applied, as upstream's field manager
`validatingadmissionpolicy-status-controller` does: `observedGeneration` and
`typeChecking.expressionWarnings`. Conditions are not written, as upstream's controller writes
none.
"""

from __future__ import annotations

from typing import Any

from lks.controllers.controller import Controller
from lks.kube.cluster import Cluster
from lks.kube.policy import typecheck
from lks.kube.registry import WriteOptions

Obj = dict[str, Any]
MANAGER = "validatingadmissionpolicy-status-controller"
GROUP = "admissionregistration.k8s.io"


def _stale(policy: Obj) -> bool:
    observed = (policy.get("status") or {}).get("observedGeneration") or 0
    return (policy["metadata"].get("generation") or 0) > observed


class AdmissionPolicyStatusController(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="validatingadmissionpolicy-status", workers=1)
        self.policies = cluster.registry(GROUP, "v1", "validatingadmissionpolicies")
        self.informer = self.watch(self.policies, self._on_policy)

    def _on_policy(self, kind: str, policy: Obj, _prev: Obj | None) -> None:
        if kind != "DELETED" and _stale(policy):
            self.queue.add(policy["metadata"]["name"])

    async def sync(self, name: str) -> None:
        policy = self.informer.get(None, name)
        if policy is None or not _stale(policy):
            return
        warnings = typecheck.check(policy, self.cluster.catalog)
        status = {"observedGeneration": policy["metadata"]["generation"],
                  "typeChecking": {"expressionWarnings": warnings} if warnings else {}}
        applied = {"apiVersion": f"{GROUP}/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
                   "status": status}
        await self.policies.apply(None, name, applied, WriteOptions(field_manager=MANAGER, force=True, trusted=True),
                                  subresource="status")
