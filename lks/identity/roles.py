"""Azure's built-in role definitions that matter to AKS, with their real ids, names, descriptions
and permissions (as Azure's built-in roles reference lists them), and the matching of an action
against a role's `actions`/`notActions` (and `dataActions`/`notDataActions`, which the Kubernetes
authorizer of Entra-integrated clusters consults).

`lks.identity.rbac` keeps the role assignments that name these roles and decides requests;
`lks.arm.authorization` serves them as `Microsoft.Authorization/roleDefinitions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TYPE = "Microsoft.Authorization/roleDefinitions"
# when Azure's built-in roles were made and last changed, as its API shows them
_CREATED = "2015-02-02T21:55:09.8806423Z"
_UPDATED = "2024-01-01T00:00:00.0000000Z"
_MEMO_SIZE = 4096


def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive regex for a list of action patterns; `*` matches anything, `/` too
    (`Microsoft.ContainerService/*/read` covers `…/managedClusters/agentPools/read`)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{'.*'.join(map(re.escape, p.split('*')))})" for p in patterns), re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Role:
    id: str  # the role definition's GUID (its `name`)
    name: str  # roleName
    description: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    builtin: bool = True
    assignable_scopes: tuple[str, ...] = ("/",)
    created: str = _CREATED
    updated: str = _UPDATED
    _allow: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _deny: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _data_allow: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _data_deny: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _memo: dict[tuple[bool, str], bool] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_allow", _matcher(self.actions))
        object.__setattr__(self, "_deny", _matcher(self.not_actions))
        object.__setattr__(self, "_data_allow", _matcher(self.data_actions))
        object.__setattr__(self, "_data_deny", _matcher(self.not_data_actions))

    def permits(self, action: str) -> bool:
        """Whether the role grants the control-plane `action` (in `actions`, not in `notActions`)."""
        return self._decide(False, action)

    def permits_data(self, action: str) -> bool:
        """Whether the role grants the data `action` (in `dataActions`, not in `notDataActions`)."""
        return self._decide(True, action)

    def _decide(self, data: bool, action: str) -> bool:
        # remembered: a request's action comes from a route (or a Kubernetes resource), a small set
        known = self._memo.get((data, action))
        if known is None:
            known = _grants(self._data_allow, self._data_deny, action) if data else \
                _grants(self._allow, self._deny, action)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[(data, action)] = known
        return known

    def document(self, scope: str) -> dict[str, Any]:
        """The role definition as ARM shows it at `scope` (a subscription's built-ins carry its id)."""
        return {
            "id": definition_id(self.id, scope),
            "name": self.id,
            "type": TYPE,
            "properties": {
                "roleName": self.name,
                "type": "BuiltInRole" if self.builtin else "CustomRole",
                "description": self.description,
                "assignableScopes": list(self.assignable_scopes),
                "permissions": [{"actions": list(self.actions), "notActions": list(self.not_actions),
                                 "dataActions": list(self.data_actions),
                                 "notDataActions": list(self.not_data_actions)}],
                "createdOn": self.created,
                "updatedOn": self.updated,
                "createdBy": None,
                "updatedBy": None,
            },
        }


def _grants(allow: re.Pattern[str] | None, deny: re.Pattern[str] | None, action: str) -> bool:
    return allow is not None and allow.fullmatch(action) is not None and (deny is None or deny.fullmatch(action) is None)


def definition_id(guid: str, scope: str) -> str:
    """`/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}` for a scope in
    a subscription, `/providers/…` at the root, as ARM writes role definition ids."""
    parts = [p for p in scope.split("/") if p]
    prefix = f"/subscriptions/{parts[1]}" if len(parts) >= 2 and parts[0].lower() == "subscriptions" else ""
    return f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


_MC = "Microsoft.ContainerService/managedClusters/"
_READS = ("Microsoft.Authorization/*/read", "Microsoft.Resources/subscriptions/operationresults/read",
          "Microsoft.Resources/subscriptions/read", "Microsoft.Resources/subscriptions/resourceGroups/read")
_RBAC_READER_DATA = tuple(_MC + a for a in (
    "apps/controllerrevisions/read", "apps/daemonsets/read", "apps/deployments/read", "apps/replicasets/read",
    "apps/statefulsets/read", "autoscaling/horizontalpodautoscalers/read", "batch/cronjobs/read", "batch/jobs/read",
    "configmaps/read", "discovery.k8s.io/endpointslices/read", "endpoints/read", "events.k8s.io/events/read",
    "events/read", "extensions/daemonsets/read", "extensions/deployments/read", "extensions/ingresses/read",
    "extensions/networkpolicies/read", "extensions/replicasets/read", "limitranges/read", "metrics.k8s.io/pods/read",
    "metrics.k8s.io/nodes/read", "namespaces/read", "networking.k8s.io/ingresses/read",
    "networking.k8s.io/networkpolicies/read", "persistentvolumeclaims/read", "pods/read",
    "policy/poddisruptionbudgets/read", "replicationcontrollers/read", "resourcequotas/read", "serviceaccounts/read",
    "services/read"))
_RBAC_WRITER_DATA = tuple(_MC + a for a in (
    "apps/controllerrevisions/read", "apps/daemonsets/*", "apps/deployments/*", "apps/replicasets/*",
    "apps/statefulsets/*", "autoscaling/horizontalpodautoscalers/*", "batch/cronjobs/*",
    "coordination.k8s.io/leases/read", "coordination.k8s.io/leases/write", "coordination.k8s.io/leases/delete",
    "discovery.k8s.io/endpointslices/read", "batch/jobs/*", "configmaps/*", "endpoints/*",
    "events.k8s.io/events/read", "events/*", "extensions/daemonsets/*", "extensions/deployments/*",
    "extensions/ingresses/*", "extensions/networkpolicies/*", "extensions/replicasets/*", "limitranges/read",
    "metrics.k8s.io/pods/read", "metrics.k8s.io/nodes/read", "namespaces/read", "networking.k8s.io/ingresses/*",
    "networking.k8s.io/networkpolicies/*", "persistentvolumeclaims/*", "pods/*", "policy/poddisruptionbudgets/*",
    "replicationcontrollers/*", "resourcequotas/read", "secrets/*", "serviceaccounts/*", "services/*"))

BUILTIN: tuple[Role, ...] = (
    Role("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner",
         "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.", ("*",)),
    Role("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor",
         "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage "
         "assignments in Azure Blueprints, or share image galleries.", ("*",),
         ("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
          "Microsoft.Authorization/elevateAccess/Action", "Microsoft.Blueprint/blueprintAssignments/write",
          "Microsoft.Blueprint/blueprintAssignments/delete", "Microsoft.Compute/galleries/share/action",
          "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete",
          "Microsoft.Resources/deploymentStacks/manageDenySetting/action", "Microsoft.Subscription/cancel/action",
          "Microsoft.Subscription/enable/action")),
    Role("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader",
         "View all resources, but does not allow you to make any changes.", ("*/read",)),
    Role("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator",
         "Lets you manage user access to Azure resources.", ("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*")),
    Role("f58310d9-a9f6-439a-9e8d-f62e7b41a168", "Role Based Access Control Administrator",
         "Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to "
         "manage access using other ways, such as Azure Policy.",
         ("Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete", "*/read",
          "Microsoft.Support/*")),
    Role("0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8", "Azure Kubernetes Service Cluster Admin Role",
         "List cluster admin credential action.",
         (_MC + "listClusterAdminCredential/action", _MC + "accessProfiles/listCredential/action", _MC + "read", _MC + "runcommand/action")),
    Role("4abbcc35-e782-43d8-92c5-2d3f1bd2253f", "Azure Kubernetes Service Cluster User Role",
         "List cluster user credential action.", (_MC + "listClusterUserCredential/action", _MC + "read")),
    Role("1afdec4b-e479-420e-99e7-f82237c7c5e6", "Azure Kubernetes Service Cluster Monitoring User",
         "List cluster monitoring user credential action.",
         (_MC + "listClusterMonitoringUserCredential/action", _MC + "read")),
    Role("ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8", "Azure Kubernetes Service Contributor Role",
         "Grants access to read and write Azure Kubernetes Service clusters",
         (_MC + "read", _MC + "write", "Microsoft.Resources/deployments/*")),
    Role("3498e952-d568-435e-9b2c-8d77e338d7f7", "Azure Kubernetes Service RBAC Admin",
         "Lets you manage all resources under cluster/namespace, except update or delete resource quotas and "
         "namespaces.", (*_READS, _MC + "listClusterUserCredential/action"), (), (_MC + "*",),
         (_MC + "resourcequotas/write", _MC + "resourcequotas/delete", _MC + "namespaces/write",
          _MC + "namespaces/delete")),
    Role("b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b", "Azure Kubernetes Service RBAC Cluster Admin",
         "Lets you manage all resources in the cluster.", (*_READS, _MC + "listClusterUserCredential/action"), (),
         (_MC + "*",)),
    Role("7f6c6a51-bcf8-42ba-9220-52d62157d7db", "Azure Kubernetes Service RBAC Reader",
         "Allows read-only access to see most objects in a namespace. It does not allow viewing roles or role "
         "bindings. This role does not allow viewing Secrets, since reading the contents of Secrets enables access "
         "to ServiceAccount credentials in the namespace, which would allow API access as any ServiceAccount in the "
         "namespace (a form of privilege escalation). Applying this role at cluster scope will give access across "
         "all namespaces.", _READS, (), _RBAC_READER_DATA),
    Role("a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb", "Azure Kubernetes Service RBAC Writer",
         "Allows read/write access to most objects in a namespace.This role does not allow viewing or modifying "
         "roles or role bindings. However, this role allows accessing Secrets and running Pods as any ServiceAccount "
         "in the namespace, so it can be used to gain the API access levels of any ServiceAccount in the namespace. "
         "Applying this role at cluster scope will give access across all namespaces.", _READS, (), _RBAC_WRITER_DATA),
)

OWNER = BUILTIN[0]
_BY_ID = {r.id: r for r in BUILTIN}
_BY_NAME = {r.name.lower(): r for r in BUILTIN}


def custom(doc: dict[str, Any]) -> Role:
    """A custom role from its stored document (as `Role.document` shows it)."""
    props = doc["properties"]
    perms = (props.get("permissions") or [{}])[0]
    return Role(doc["name"].lower(), props["roleName"], props.get("description") or "",
                tuple(perms.get("actions") or ()), tuple(perms.get("notActions") or ()),
                tuple(perms.get("dataActions") or ()), tuple(perms.get("notDataActions") or ()), builtin=False,
                assignable_scopes=tuple(props.get("assignableScopes") or ()), created=props.get("createdOn") or "",
                updated=props.get("updatedOn") or "")


def get(guid: str) -> Role | None:
    """The built-in role whose GUID is `guid` (any case)."""
    return _BY_ID.get(guid.lower())


def by_name(name: str) -> Role | None:
    """The built-in role named `name` (roleName, any case)."""
    return _BY_NAME.get(name.lower())


def guid_of(role_definition_id: str) -> str:
    """The GUID at the end of a role definition id (or the GUID itself), lower case."""
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
