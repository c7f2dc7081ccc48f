"""`properties.aadProfile` of a managed cluster: AKS-managed Microsoft Entra integration
(`managed`, `adminGroupObjectIDs`, `enableAzureRBAC`, `tenantID` defaulted to the service's
tenant), checked as AKS checks it. The legacy integration (a client and a server application
of the user's own, `managed: false`) is retired and refused; managed integration, once on,
cannot be turned off; Azure RBAC needs it, and it needs Kubernetes RBAC.

`lks.arm.model.managed_cluster` calls `profile`; `lks.arm.plane` hands the result to the
cluster's API server (`lks.kube.entra`), `lks.arm.managedclusters` shapes the user kubeconfig.
"""

from __future__ import annotations

import uuid
from typing import Any

from lks.arm.errors import ARMError, invalid_parameter

Doc = dict[str, Any]

SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"  # AKS's Entra server app: the tokens' audience
CLIENT_APP = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"  # the Azure CLI public client kubelogin logs in as
_LEGACY = ("clientAppID", "serverAppID", "serverAppSecret")


def profile(props_in: Doc, old_props: Doc, *, tenant_id: str | None, rbac: bool) -> Doc | None:
    """The stored `aadProfile` of a PUT (None: no Entra integration); raises AKS's errors."""
    old = old_props.get("aadProfile") or None
    given = props_in["aadProfile"] if "aadProfile" in props_in else old
    if given is None:
        if old and old.get("managed"):
            raise _cannot_disable()
        return None
    if not isinstance(given, dict):
        raise invalid_parameter(f"The value of parameter aadProfile is invalid: '{given}'.", "aadProfile")
    managed = given.get("managed")
    if managed is not True:
        if old and old.get("managed"):
            raise _cannot_disable()
        if given.get("enableAzureRBAC"):
            raise invalid_parameter("Azure RBAC for Kubernetes authorization (aadProfile.enableAzureRBAC) can only "
                                    "be enabled with AKS-managed Microsoft Entra integration (aadProfile.managed).",
                                    "aadProfile.enableAzureRBAC")
        raise ARMError("BadRequest", "Azure AD integration (legacy) is retired and can no longer be set up "
                       "(aadProfile.managed is false). Use AKS-managed Microsoft Entra integration instead "
                       "(aadProfile.managed: true): https://aka.ms/aks/managed-aad", 400, target="aadProfile")
    if not rbac:
        raise invalid_parameter("AKS-managed Microsoft Entra integration requires Kubernetes RBAC: enableRBAC "
                                "must be true.", "aadProfile")
    if any(given.get(k) for k in _LEGACY):
        field = next(k for k in _LEGACY if given.get(k))
        raise invalid_parameter(f"aadProfile.{field} cannot be set with AKS-managed Microsoft Entra integration "
                                "(aadProfile.managed).", f"aadProfile.{field}")
    azure_rbac = given.get("enableAzureRBAC", False)
    if azure_rbac is None:
        azure_rbac = False
    if not isinstance(azure_rbac, bool):
        raise invalid_parameter(f"The value of parameter aadProfile.enableAzureRBAC is invalid: '{azure_rbac}'.",
                                "aadProfile.enableAzureRBAC")
    return {"managed": True, "enableAzureRBAC": azure_rbac,
            "adminGroupObjectIDs": _group_ids(given.get("adminGroupObjectIDs")),
            "tenantID": _tenant(given.get("tenantID"), old, tenant_id)}


def _group_ids(value: Any) -> list[str]:
    target = "aadProfile.adminGroupObjectIDs"
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_parameter(f"The value of parameter {target} is invalid.", target)
    out: list[str] = []
    for item in value:
        try:
            out.append(str(uuid.UUID(item)) if isinstance(item, str) else "")
        except ValueError:
            out.append("")
        if not out[-1]:
            raise invalid_parameter(f"The value of parameter {target} is invalid: '{item}' is not a valid "
                                    "object ID (GUID).", target)
    return list(dict.fromkeys(out))


def _tenant(value: Any, old: Doc | None, service_tenant: str | None) -> str:
    if value in (None, ""):
        return (old or {}).get("tenantID") or service_tenant or ""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise invalid_parameter(f"The value of parameter aadProfile.tenantID is invalid: '{value}'.",
                                "aadProfile.tenantID") from None


def _cannot_disable() -> ARMError:
    return ARMError("BadRequest", "AKS-managed Microsoft Entra integration cannot be disabled once it is enabled.",
                    400, target="aadProfile.managed")


def settings(doc: Doc, resource_id: str) -> Doc | None:
    """What the cluster's API server needs of the profile (`lks.kube.entra.Settings`' record)."""
    aad = doc["properties"].get("aadProfile")
    if not aad or not aad.get("managed"):
        return None
    return {"resourceId": resource_id, "tenantID": aad["tenantID"],
            "adminGroupObjectIDs": list(aad.get("adminGroupObjectIDs") or []),
            "enableAzureRBAC": bool(aad.get("enableAzureRBAC"))}


FORMATS = ("azure", "exec")


def user_credential(aad: Doc, endpoint: str, format: str) -> Doc:
    """The user kubeconfig's credential of an Entra-integrated cluster, in AKS's shapes: `exec`
    (the default) runs `lks get-token`, whose flags are kubelogin's `get-token`'s (AKS's runs
    `kubelogin`), with the service as the authority and `--login spn` (lks has no users for
    device-code login; the principal's credentials come from the environment, as kubelogin's
    spn login takes them); `azure` is the legacy `azure` auth provider's configuration."""
    tenant = aad["tenantID"]
    if format == "azure":
        return {"auth-provider": {"name": "azure", "config": {
            "apiserver-id": SERVER_APP, "client-id": CLIENT_APP, "config-mode": "1",
            "environment": "AzurePublicCloud", "tenant-id": tenant}}}
    return {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "lks",
        "args": ["get-token", "--environment", "AzurePublicCloud", "--server-id", SERVER_APP, "--client-id",
                 CLIENT_APP, "--tenant-id", tenant, "--authority-host", endpoint.rstrip("/") + "/", "--login", "spn"],
        "env": None,
        "installHint": "lks is not installed which is required to connect to an Entra-integrated cluster.\n"
                       "Install lks, whose `lks get-token` obtains the token (as kubelogin does for AKS).\n",
        "interactiveMode": "IfAvailable",
        # the token endpoint is served with the cluster's CA: get-token trusts it from there
        "provideClusterInfo": True,
    }}
