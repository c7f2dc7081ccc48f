"""The ValidatingAdmissionPolicy status controller: each generation is type checked against the
matched types' schemas and the result applied as status (observedGeneration, typeChecking)."""

from __future__ import annotations

from lks.controllers.admissionpolicystatus import MANAGER, AdmissionPolicyStatusController

RULES = [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]}]


def vap(expression: str) -> dict:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "p"},
            "spec": {"matchConstraints": {"resourceRules": RULES}, "validations": [{"expression": expression}]}}


async def test_status_carries_type_warnings_and_the_observed_generation(cluster, settle):
    ctrl = AdmissionPolicyStatusController(cluster)
    await ctrl.start()
    try:
        reg = cluster.registry("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies")
        await reg.create(None, vap("object.replicas > 1"))
        await settle(lambda: (ctrl.informer.get(None, "p") or {}).get("status", {}).get("observedGeneration") == 1)
        policy = ctrl.informer.get(None, "p")
        assert policy["status"]["typeChecking"] == {"expressionWarnings": [{
            "fieldRef": "spec.validations[0].expression",
            "warning": "apps/v1, Kind=Deployment: ERROR: <input>:1:7: undefined field 'replicas'\n"
                       " | object.replicas > 1\n | ......^"}]}
        assert any(e["manager"] == MANAGER for e in policy["metadata"]["managedFields"])
        fixed = {**policy, "spec": {**policy["spec"], "validations": [{"expression": "object.spec.replicas > 1"}]}}
        await reg.update(None, "p", fixed)
        await settle(lambda: ctrl.informer.get(None, "p")["status"].get("observedGeneration") == 2)
        assert "expressionWarnings" not in ctrl.informer.get(None, "p")["status"].get("typeChecking", {})
    finally:
        await ctrl.stop()
