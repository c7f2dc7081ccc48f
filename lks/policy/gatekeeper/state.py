"""What Gatekeeper knows of a cluster at a moment, shared by the webhook and the audit: the
compiled templates (from `templates.TemplateController`), the constraints of their kinds (read
from the constraint kinds' watch caches, parsed once per resourceVersion), and the Config's
excluded namespaces and sync list (`gatekeeper-system/config`). Nothing here lists the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lks.kube import errors
from lks.policy.gatekeeper import constraints, crds, engines, manifests

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry

Obj = dict[str, Any]
CONFIG_NAME = "config"


@dataclass(slots=True)
class Bound:
    """A constraint with the program of its template."""

    constraint: constraints.Constraint
    program: engines.Program


class State:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.programs: dict[str, engines.Program] = {}  # constraint kind -> program
        self.kinds: dict[str, str] = {}  # template name -> kind
        self._parsed: dict[str, tuple[str, constraints.Constraint]] = {}  # store key -> (rv, parsed)
        self._registries: dict[str, Registry] = {}

    # -- templates ---------------------------------------------------------------------

    def set_template(self, name: str, kind: str, program: engines.Program) -> None:
        self.kinds[name] = kind
        self.programs[kind] = program

    def remove_template(self, name: str) -> str | None:
        kind = self.kinds.pop(name, None)
        if kind is not None:
            self.programs.pop(kind, None)
            self._registries.pop(kind, None)
        return kind

    # -- constraints -------------------------------------------------------------------

    def _registry(self, kind: str) -> Registry | None:
        reg = self._registries.get(kind)
        if reg is None or reg.rt is not self.cluster.catalog.lookup(crds.CONSTRAINTS_GROUP, "v1beta1", kind.lower()):
            try:
                reg = self._registries[kind] = self.cluster.registry(crds.CONSTRAINTS_GROUP, "v1beta1", kind.lower())
            except errors.APIError:
                return None
        return reg

    def registry(self, kind: str) -> Registry | None:
        return self._registry(kind)

    async def constraints(self) -> list[Bound]:
        """Every constraint whose template compiled, by kind then name."""
        out: list[Bound] = []
        for kind in sorted(self.programs):
            program = self.programs[kind]
            reg = self._registry(kind)
            if reg is None:
                continue
            objects = (await reg.cache()).objects
            for key in sorted(objects):
                obj = objects[key]
                rv = obj["metadata"].get("resourceVersion") or ""
                memo = self._parsed.get(key)
                if memo is None or memo[0] != rv:
                    memo = self._parsed[key] = (rv, constraints.Constraint(obj))
                out.append(Bound(memo[1], program))
        if len(self._parsed) > 4 * len(out) + 64:  # constraints deleted: forget them
            live = {b.constraint.obj["metadata"].get("resourceVersion") for b in out}
            self._parsed = {k: v for k, v in self._parsed.items() if v[0] in live}
        return out

    # -- config ------------------------------------------------------------------------

    async def config(self) -> Obj | None:
        try:
            reg = self.cluster.registry(crds.CONFIG_GROUP, "v1alpha1", "configs")
        except errors.APIError:
            return None
        return (await reg.cache()).objects.get(reg.key(manifests.NAMESPACE, CONFIG_NAME))

    async def excluded(self, process: str) -> list[str]:
        """The Config's excluded namespace globs for `process` (webhook, audit, sync)."""
        config = await self.config()
        out: list[str] = []
        for entry in ((config or {}).get("spec") or {}).get("match") or []:
            processes = entry.get("processes") or []
            if "*" in processes or process in processes:
                out.extend(entry.get("excludedNamespaces") or [])
        return out

    async def sync_only(self) -> list[Obj]:
        config = await self.config()
        return (((config or {}).get("spec") or {}).get("sync") or {}).get("syncOnly") or []

    async def inventory(self) -> Obj:
        """`data.inventory` from the Config's sync list: `cluster[groupversion][kind][name]` and
        `namespace[ns][groupversion][kind][name]`, as Gatekeeper's sync builds it."""
        inv: Obj = {"cluster": {}, "namespace": {}}
        excluded = await self.excluded("sync")
        for entry in await self.sync_only():
            group, version, kind = entry.get("group") or "", entry.get("version") or "", entry.get("kind") or ""
            rt = self.cluster.catalog.by_kind(group, version, kind)
            if rt is None:
                continue
            gv = f"{group}/{version}" if group else version
            reg = self.cluster.registry(rt.group, rt.version, rt.resource)
            for obj in (await reg.cache()).objects.values():
                meta = obj["metadata"]
                ns = meta.get("namespace")
                if ns and constraints.any_glob(excluded, ns):
                    continue
                served = reg.served(obj) if obj.get("apiVersion") != rt.gv else obj
                if ns:
                    inv["namespace"].setdefault(ns, {}).setdefault(gv, {}).setdefault(kind, {})[meta["name"]] = served
                else:
                    inv["cluster"].setdefault(gv, {}).setdefault(kind, {})[meta["name"]] = served
        return inv

    # -- pods ----------------------------------------------------------------------------

    async def pods(self) -> list[Obj]:
        """Gatekeeper's own pods (what reports statuses), from the pods' watch cache."""
        reg = self.cluster.registry("", "v1", "pods")
        objects = (await reg.cache()).objects
        prefix = reg.key(manifests.NAMESPACE, "")
        return [o for k, o in objects.items() if k.startswith(prefix)
                and (o["metadata"].get("labels") or {}).get("gatekeeper.sh/system") == "yes"]
