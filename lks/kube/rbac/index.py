"""A cluster's RBAC policy in memory, indexed for decisions: the rules of every Role and
ClusterRole, and every binding filed under each of its subjects and the namespace it grants in
("" for a ClusterRoleBinding). Deciding is then a few dict lookups per group of the user, not a
scan of the bindings (upstream walks its binding listers; we keep the index current instead).

The four watch caches feed it (`watchcache.Handler`s, called as each change is applied);
`lks.kube.rbac.authorizer` answers with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from lks.kube import watchcache
from lks.kube.authn import SERVICE_ACCOUNT_PREFIX, User
from lks.kube.rbac.rules import Rule, compile_rules

if TYPE_CHECKING:
    from lks.kube.authz import Attributes
    from lks.kube.cluster import Cluster

GROUP = "rbac.authorization.k8s.io"
Obj = dict[str, Any]
SubjectKey = tuple[str, str, str]  # ("u" | "g", user or group name, namespace granted in or "")


class Grant:
    """One subject of one binding: what it grants, and how upstream names it in reasons."""

    __slots__ = ("namespace", "binding", "ref_kind", "ref_name", "subject")

    def __init__(self, namespace: str, binding: str, ref_kind: str, ref_name: str, subject: str):
        self.namespace, self.binding = namespace, binding
        self.ref_kind, self.ref_name, self.subject = ref_kind, ref_name, subject

    def describe(self) -> str:
        """Upstream's binding describers (the RoleBinding's name/namespace order is theirs)."""
        if self.namespace:
            return (f'RoleBinding "{self.binding}/{self.namespace}" of {self.ref_kind} "{self.ref_name}" '
                    f"to {self.subject}")
        return f'ClusterRoleBinding "{self.binding}" of {self.ref_kind} "{self.ref_name}" to {self.subject}'


def _subject_keys(subject: dict, namespace: str) -> tuple[tuple[str, str], str] | None:
    """((kind, name) as indexed, upstream's description) of a binding subject, else None
    (upstream's `appliesToUser`: a ServiceAccount's namespace defaults to the binding's)."""
    kind, name = subject.get("kind"), subject.get("name")
    if not isinstance(name, str) or not name:
        return None
    if kind == "User":
        return ("u", name), f'User "{name}"'
    if kind == "Group":
        return ("g", name), f'Group "{name}"'
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or namespace
        if not ns:
            return None
        return ("u", f"{SERVICE_ACCOUNT_PREFIX}{ns}:{name}"), f'ServiceAccount "{ns}/{name}"'
    return None


class PolicyIndex:
    def __init__(self) -> None:
        self.roles: dict[tuple[str, str], tuple[Rule, ...]] = {}  # (namespace, name) -> rules
        self.cluster_roles: dict[str, tuple[Rule, ...]] = {}
        self._grants: dict[SubjectKey, dict[str, Grant]] = {}  # -> binding key -> grant
        self._filed: dict[str, list[SubjectKey]] = {}  # binding key -> where it is filed
        self._feeds: list[_Feed] = []

    # -- feeding -------------------------------------------------------------------------

    async def start(self, cluster: Cluster) -> None:
        for resource, apply in (("clusterroles", self._cluster_role), ("roles", self._role),
                                ("clusterrolebindings", self._binding), ("rolebindings", self._binding)):
            feed = _Feed(cluster, resource, apply, self)
            await feed.start()
            self._feeds.append(feed)

    def stop(self) -> None:
        for feed in self._feeds:
            feed.stop()
        self._feeds.clear()

    def _cluster_role(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self.cluster_roles.pop(name, None)
        else:
            self.cluster_roles[name] = compile_rules(obj.get("rules"))

    def _role(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        if kind == "DELETED":
            self.roles.pop(key, None)
        else:
            self.roles[key] = compile_rules(obj.get("rules"))

    def _binding(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        meta = obj["metadata"]
        namespace, name = meta.get("namespace") or "", meta["name"]
        key = f"{namespace}/{name}"
        self._unfile(key)
        if kind == "DELETED":
            return
        ref = obj.get("roleRef") or {}
        ref_kind, ref_name = ref.get("kind", ""), ref.get("name", "")
        filed = []
        for subject in obj.get("subjects") or ():
            found = _subject_keys(subject, namespace) if isinstance(subject, dict) else None
            if found is None:
                continue
            (skind, sname), described = found
            where = (skind, sname, namespace)
            self._grants.setdefault(where, {})[key] = Grant(namespace, name, ref_kind, ref_name, described)
            filed.append(where)
        if filed:
            self._filed[key] = filed

    def _unfile(self, key: str) -> None:
        for where in self._filed.pop(key, ()):
            grants = self._grants.get(where)
            if grants is not None:
                grants.pop(key, None)
                if not grants:
                    del self._grants[where]

    def forget(self, resource: str) -> None:
        """Drop what one resource fed (its cache is gone; the new one delivers it all again)."""
        if resource == "clusterroles":
            self.cluster_roles.clear()
        elif resource == "roles":
            self.roles.clear()
        else:
            cluster_scoped = resource == "clusterrolebindings"  # their keys are "/<name>"
            for key in [k for k in self._filed if k.startswith("/") == cluster_scoped]:
                self._unfile(key)

    # -- reading -------------------------------------------------------------------------

    def grants(self, user: User, namespace: str) -> Iterator[Grant]:
        """The grants that apply to `user` in `namespace`: cluster-wide ones first, as upstream
        visits ClusterRoleBindings before the namespace's RoleBindings."""
        table = self._grants
        scopes = ("", namespace) if namespace else ("",)
        for scope in scopes:
            found = table.get(("u", user.name, scope))
            if found:
                yield from found.values()
            for group in user.groups:
                found = table.get(("g", group, scope))
                if found:
                    yield from found.values()

    def rules_of(self, grant: Grant) -> tuple[Rule, ...] | None:
        if grant.ref_kind == "ClusterRole":
            return self.cluster_roles.get(grant.ref_name)
        if grant.ref_kind == "Role" and grant.namespace:
            return self.roles.get((grant.namespace, grant.ref_name))
        return None

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason): upstream's RBACAuthorizer.Authorize (its reason names the binding
        that allowed, or what could not be resolved)."""
        missing: list[str] = []
        for grant in self.grants(attrs.user, attrs.namespace):
            rules = self.rules_of(grant)
            if rules is None:
                missing.append(_not_found(grant))
                continue
            for rule in rules:
                if rule.allows(attrs):
                    return True, f"RBAC: allowed by {grant.describe()}"
        return False, f"RBAC: {aggregate(missing)}" if missing else ""

    def rules_for(self, user: User, namespace: str) -> tuple[list[Obj], list[str]]:
        """The user's rules in `namespace` (cluster-wide ones included) and the errors met."""
        rules: list[Obj] = []
        missing: list[str] = []
        for grant in self.grants(user, namespace):
            found = self.rules_of(grant)
            if found is None:
                missing.append(_not_found(grant))
            else:
                rules += (r.raw for r in found)
        return rules, missing


def index_of(cluster: Cluster) -> PolicyIndex | None:
    """The RBAC index of a cluster's authorizer chain, None when RBAC is off."""
    for member in cluster.authorizer.members:
        index = getattr(member, "index", None)
        if isinstance(index, PolicyIndex):
            return index
    return None


def aggregate(messages: list[str]) -> str:
    """Several errors as upstream's utilerrors.NewAggregate prints them."""
    return messages[0] if len(messages) == 1 else f"[{', '.join(messages)}]"


def _not_found(grant: Grant) -> str:
    resource = "clusterrole" if grant.ref_kind == "ClusterRole" else "role"
    return f'{resource}.{GROUP} "{grant.ref_name}" not found'


class _Feed(watchcache.Handler):
    """One resource's watch cache feeding the index (delivered synchronously as it applies)."""

    def __init__(self, cluster: Cluster, resource: str, apply: Callable[[str, Obj, Obj | None], None],
                 index: PolicyIndex):
        self.registry = cluster.registry(GROUP, "v1", resource)
        self.resource, self.apply, self.index = resource, apply, index
        self.cache: watchcache.WatchCache | None = None
        self._task: asyncio.Task[None] | None = None  # taking a new cache after a re-list
        self._stopped = False

    async def start(self) -> None:
        self.cache = await self.registry.cache()
        self.cache.add_handler(self)

    def stop(self) -> None:
        self._stopped = True
        if self.cache is not None:
            self.cache.remove_handler(self)
        if self._task is not None:
            self._task.cancel()

    def deliver(self, kind: str, obj: Obj, prev: Obj | None) -> None:
        self.apply(kind, obj, prev)

    def cache_closed(self) -> None:
        if not self._stopped:  # start over from the new cache's state
            self.index.forget(self.resource)
            self._task = asyncio.get_running_loop().create_task(self.start())
