"""Microsoft Entra ID on a hosted API server, as AKS-managed Entra integration sets it up: a token
authenticator for access tokens the tenant's issuer made for AKS's Entra server app (what
`lks get-token`, like kubelogin, obtains), the `aks-cluster-admin-binding-aad` binding of the
admin groups to `cluster-admin`, and with Azure RBAC an authorizer after in-cluster RBAC that
asks the principal's Azure role assignments, as AKS's webhook authorizer (guard) does.

This layer knows nothing of the tenant: the service hands every cluster one `Directory` (its
token checks and role assignments, `lks.identity.clusterauth`), and the management plane the
cluster's settings (`lks.controlplanes.ControlPlanes.set_entra`); `configure` applies them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from lks.kube import authz, deletion, errors
from lks.kube.authn import AUTHENTICATED, User
from lks.kube.registry import WriteOptions

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

ADMIN_BINDING = "aks-cluster-admin-binding-aad"
CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
OID = "oid"  # the extra key guard's authentication sets, and its authorizer reads
DENIED = "User does not have access to the resource in Azure. Update role assignment to allow access."
_RBAC = "rbac.authorization.k8s.io"
_MANAGER = "aks-entra"


class Directory(Protocol):
    """What a cluster asks the tenant."""

    def claims(self, token: str, tenant_id: str) -> Mapping[str, Any] | None:
        """The claims of `token` if the tenant's issuer signed it for AKS's server app, for
        `tenant_id`, and it is current; None otherwise."""

    def allows_data(self, object_id: str, groups: tuple[str, ...], action: str, scope: str) -> bool:
        """Whether a role assignment of the principal (or of one of its groups) at `scope` or
        above grants the data action."""


@dataclass(frozen=True, slots=True)
class Settings:
    """A managed cluster's `aadProfile` as its API server needs it."""

    resource_id: str  # the managed cluster's ARM id: the scope of Azure RBAC decisions
    tenant_id: str
    admin_groups: tuple[str, ...] = ()
    azure_rbac: bool = False

    @classmethod
    def of(cls, record: Mapping[str, Any] | None) -> Settings | None:
        if not record:
            return None
        return cls(record["resourceId"], record["tenantID"], tuple(record.get("adminGroupObjectIDs") or ()),
                   bool(record.get("enableAzureRBAC")))


class Authenticator:
    """Bearer tokens of the tenant for AKS's server app: the principal's object id as the user
    name (AKS shows a service principal's oid), its groups and `system:authenticated`, the oid
    in `extra` as guard sets it. Anything else is not its own (None): 401 when no other
    authenticator knows the token, as kube-apiserver answers."""

    def __init__(self, settings: Settings, directory: Directory):
        self.settings = settings
        self.directory = directory

    async def __call__(self, token: str) -> User | None:
        if token.count(".") != 2:  # not a JWT: spare the directory
            return None
        claims = self.directory.claims(token, self.settings.tenant_id)
        if claims is None:
            return None
        oid = str(claims.get("oid") or "")
        if not oid:
            return None
        groups = tuple(str(g) for g in claims.get("groups") or ())
        return User(oid, (*groups, AUTHENTICATED), extra={OID: (oid,)})


def data_action(attrs: authz.Attributes) -> str | None:
    """The Azure data action of a request, as guard maps it: `<type>/<group>/<resource>/<verb>`
    with get/list/watch → read, create/update/patch → write, delete/deletecollection → delete,
    bind/escalate/use/impersonate → `<verb>/action`, `pods/exec` → `pods/exec/action`; a
    non-resource path → `<type><path>/<verb>`. None for what it has no action for (wildcards,
    other verbs)."""
    verb = _VERBS.get(attrs.verb)
    if verb is None:
        return None
    if not attrs.resource_request:
        return posixpath.join(CLUSTER_TYPE, attrs.path.lstrip("/"), verb)
    if attrs.resource == "*" or attrs.api_group == "*":
        return None
    parts = [CLUSTER_TYPE, *([attrs.api_group] if attrs.api_group else [])]
    if attrs.resource == "pods" and attrs.subresource == "exec":
        return "/".join((*parts, "pods/exec/action"))
    return "/".join((*parts, attrs.resource, verb))


_VERBS = {"get": "read", "list": "read", "watch": "read", "create": "write", "update": "write", "patch": "write",
          "delete": "delete", "deletecollection": "delete", "bind": "bind/action", "escalate": "escalate/action",
          "use": "use/action", "impersonate": "impersonate/action"}


class AzureRBAC:
    """Azure RBAC for Kubernetes authorization, after the cluster's own RBAC (AKS's webhook
    authorizer): a request of an Entra principal is allowed when one of its role assignments at
    the cluster's scope, or at `<cluster>/namespaces/<ns>` for a namespaced request, grants the
    request's data action, and denied otherwise with guard's reason. Others (service accounts,
    certificates) get no opinion. A decision reads the service's in-memory index of the
    principal's few assignments (each role remembers its answer per action): nothing to cache,
    and a new or deleted assignment counts at once."""

    def __init__(self, settings: Settings, directory: Directory):
        self.settings = settings
        self.directory = directory

    async def authorize(self, attrs: authz.Attributes) -> tuple[str, str]:
        oid = attrs.user.extra.get(OID)
        if not oid:
            return authz.NO_OPINION, ""
        action = data_action(attrs)
        if action is None:
            return authz.DENY, DENIED
        scope = self.settings.resource_id
        if attrs.resource_request and attrs.namespace:
            scope = f"{scope}/namespaces/{attrs.namespace}"
        groups = tuple(g for g in attrs.user.groups if g != AUTHENTICATED)
        if self.directory.allows_data(oid[0], groups, action, scope):
            return authz.ALLOW, "Access allowed by Azure RBAC"
        return authz.DENY, DENIED

    async def rules_for(self, user: User, namespace: str) -> authz.Rules:
        # a webhook cannot list rules: upstream's webhook authorizer answers "incomplete"
        return authz.Rules(incomplete=True) if user.extra.get(OID) else authz.Rules()


async def configure(cluster: Cluster, settings: Settings | None, directory: Directory | None) -> None:
    """Give `cluster` the Entra integration `settings` describe (None: none), replacing what an
    earlier call gave it. The admin groups' binding is written through the API (server-side
    apply), so a cluster that was stopped gets it when it starts again."""
    cluster.token_authenticators[:] = [a for a in cluster.token_authenticators if not isinstance(a, Authenticator)]
    cluster.authorizer.members[:] = [m for m in cluster.authorizer.members if not isinstance(m, AzureRBAC)]
    if settings is None or directory is None:
        return
    cluster.token_authenticators.append(Authenticator(settings, directory))
    if settings.azure_rbac:
        cluster.authorizer.members.append(AzureRBAC(settings, directory))
    await _admin_binding(cluster, settings.admin_groups)


async def _admin_binding(cluster: Cluster, groups: tuple[str, ...]) -> None:
    reg = cluster.registry(_RBAC, "v1", "clusterrolebindings")
    if not groups:
        try:
            await reg.delete(None, ADMIN_BINDING, deletion.DeleteOptions())
        except errors.APIError as err:
            if err.code != 404:
                raise
        return
    binding = {
        "apiVersion": f"{_RBAC}/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": ADMIN_BINDING, "labels": {"addonmanager.kubernetes.io/mode": "Reconcile",
                                                       "kubernetes.io/cluster-service": "true"}},
        "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": _RBAC, "kind": "Group", "name": g} for g in groups],
    }
    await reg.apply(None, ADMIN_BINDING, binding, WriteOptions(field_manager=_MANAGER, force=True))
