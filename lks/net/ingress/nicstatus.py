"""The `default` NginxIngressController's status, as the app-routing operator writes it
(`pkg/controller/nginxingress/nginx_ingress_controller.go`, `updateStatus`): whether its
IngressClass exists, its Deployment's replicas and its Available / Progressing conditions
turned into the controller's `ControllerAvailable` / `Progressing`, and `Available` when both
the class and the Deployment are there. Pure: `controller.py` reads the caches and writes it.
"""

from __future__ import annotations

from typing import Any

from lks.controllers.addons import approuting

Obj = dict[str, Any]

_DEPLOYMENT = {  # deployment condition type -> (ours, {status: (reason, message)})
    "Available": ("ControllerAvailable", {
        "True": ("ControllerDeploymentAvailable", "Controller Deployment is available"),
        "False": ("ControllerDeploymentNotAvailable", "Controller Deployment is not available"),
        "Unknown": ("ControllerDeploymentUnknown", "Controller Deployment is in an unknown state")}),
    "Progressing": ("Progressing", {
        "True": ("ControllerDeploymentProgressing", "Controller Deployment has successfully progressed"),
        "False": ("ControllerDeploymentNotProgressing", "Controller Deployment has failed to progress"),
        "Unknown": ("ControllerDeploymentProgressingUnknown", "Controller Deployment progress is unknown")}),
}


def status(nic: Obj, *, ingress_class: Obj | None, deployment: Obj | None, now: str) -> Obj:
    """The status `nic` should have; a condition keeps its lastTransitionTime while its status
    stays."""
    old = {c.get("type"): c for c in (nic.get("status") or {}).get("conditions") or []}
    generation = nic["metadata"].get("generation") or 1
    conditions: dict[str, Obj] = {}

    def put(kind: str, value: str, reason: str, message: str) -> None:
        before = old.get(kind) or {}
        since = before.get("lastTransitionTime") if before.get("status") == value else None
        conditions[kind] = {"type": kind, "status": value, "observedGeneration": generation,
                            "lastTransitionTime": since or now, "reason": reason, "message": message}

    if ingress_class is None:
        put("IngressClassReady", "Unknown", "IngressClassUnknown", "IngressClass is unknown")
    else:
        put("IngressClassReady", "True", "IngressClassIsReady", "Ingress Class is up-to-date ")
    out: Obj = {"collisionCount": (nic.get("status") or {}).get("collisionCount") or 0}
    if deployment is None:
        put("ControllerAvailable", "Unknown", "ControllerDeploymentUnknown", "Controller deployment is unknown")
        put("Progressing", "Unknown", "ControllerDeploymentUnknown", "Controller deployment is unknown")
    else:
        st = deployment.get("status") or {}
        out.update(controllerReadyReplicas=st.get("readyReplicas") or 0,
                   controllerAvailableReplicas=st.get("availableReplicas") or 0,
                   controllerUnavailableReplicas=st.get("unavailableReplicas") or 0,
                   controllerReplicas=st.get("replicas") or 0)
        for cond in st.get("conditions") or []:
            known = _DEPLOYMENT.get(cond.get("type"))
            if known is not None:
                reason, message = known[1].get(cond.get("status"), known[1]["Unknown"])
                put(known[0], cond.get("status") if cond.get("status") in ("True", "False") else "Unknown",
                    reason, message)
    if (conditions.get("ControllerAvailable") or {}).get("status") == "True" and ingress_class is not None:
        put("Available", "True", "ControllerIsAvailable",
            "Controller Deployment has minimum availability and IngressClass is up-to-date")
    else:
        put("Available", "False", "ControllerIsNotAvailable",
            "Controller Deployment does not have minimum availability or IngressClass is not up-to-date")
    out["conditions"] = list(conditions.values())
    out["managedResourceRefs"] = approuting.managed_refs()
    return out
