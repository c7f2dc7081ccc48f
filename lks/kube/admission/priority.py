"""Priority admission (upstream's `plugin/pkg/admission/priority`): a new pod gets
`spec.priority` and `spec.preemptionPolicy` from its `priorityClassName`'s PriorityClass, or
from the global default class (whose name it then takes), or 0 and `PreemptLowerPriority`;
an unknown class, or a priority or policy the pod states that differs from the class's, is
403 in upstream's words. An update keeps the values admission set at create.

PriorityClasses: only one may be the global default, and the two system classes, which every
cluster has from its start (`bootstrap`, upstream's `scheduling/bootstrap-system-priority-classes`
post-start hook), cannot be deleted (upstream's PriorityClass REST). Their values cannot change:
`lks.kube.typevalidation.scheduling` says so for every class. Upstream has no namespace
restriction on the system classes since 1.17 (a ResourceQuota's scope can add one), nor here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.kube import admission, errors
from lks.kube.typevalidation.scheduling import SYSTEM_CLASSES

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]

PREEMPT_LOWER = "PreemptLowerPriority"


@admission.plugin
class Priority:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    async def admit(self, operation: str, reg: Registry, obj: Obj, old: Obj | None, opts: WriteOptions) -> None:
        if reg.rt.group or reg.rt.resource != "pods" or opts.subresource:
            return
        spec = obj.setdefault("spec", {})
        if operation == "UPDATE":  # what admission set at create stays (validation keeps it immutable)
            old_spec = (old or {}).get("spec") or {}
            for key in ("priority", "preemptionPolicy"):
                if spec.get(key) is None and old_spec.get(key) is not None:
                    spec[key] = old_spec[key]
            return
        name = spec.get("priorityClassName") or ""
        if not name:
            pc = await self._global_default()
            if pc is not None:
                spec["priorityClassName"] = name = pc["metadata"]["name"]
                priority, policy = pc.get("value") or 0, pc.get("preemptionPolicy")
            else:
                priority, policy = 0, PREEMPT_LOWER
        else:
            pc = await self._class(name)
            if pc is None:
                raise forbidden(reg, obj, f"no PriorityClass with name {name} was found")
            priority, policy = pc.get("value") or 0, pc.get("preemptionPolicy")
        stated = spec.get("priority")
        if stated is not None and stated != priority:
            raise forbidden(reg, obj, f"the integer value of priority ({stated}) must not be provided in pod spec; "
                                      f"priority admission controller computed {priority} from the given "
                                      "PriorityClass name")
        spec["priority"] = priority
        if policy is not None:
            stated = spec.get("preemptionPolicy")
            if stated is not None and stated != policy:
                raise forbidden(reg, obj, f"the string value of PreemptionPolicy ({stated}) must not be provided in "
                                          f"pod spec; priority admission controller computed {policy} from the "
                                          "given PriorityClass name")
            spec["preemptionPolicy"] = policy

    async def validate(self, operation: str, reg: Registry, obj: Obj | None, old: Obj | None,
                       opts: WriteOptions) -> None:
        if reg.rt.group != "scheduling.k8s.io" or reg.rt.resource != "priorityclasses" or opts.subresource:
            return
        if operation == "DELETE":
            name = ((old or {}).get("metadata") or {}).get("name")
            if name in SYSTEM_CLASSES:
                raise errors.forbidden(reg.rt.resource, reg.rt.group, name,
                                       "this is a system priority class and cannot be deleted")
            return
        if obj is None or not obj.get("globalDefault"):
            return
        current = await self._global_default()
        name = obj["metadata"].get("name")
        if current is not None and (operation == "CREATE" or current["metadata"]["name"] != name):
            raise forbidden(reg, obj, f"PriorityClass {current['metadata']['name']} is already marked as default. "
                                      "Only one default can exist")

    async def _classes(self) -> list[Obj]:
        reg = self.cluster.registry("scheduling.k8s.io", "v1", "priorityclasses")
        return list((await reg.cache()).objects.values())

    async def _class(self, name: str) -> Obj | None:
        reg = self.cluster.registry("scheduling.k8s.io", "v1", "priorityclasses")
        return (await reg.cache()).objects.get(reg.key(None, name))

    async def _global_default(self) -> Obj | None:
        """The global default class; of several (created concurrently), the lowest, as upstream."""
        best = None
        for pc in await self._classes():
            if pc.get("globalDefault") and (best is None or (best.get("value") or 0) > (pc.get("value") or 0)):
                best = pc
        return best



def forbidden(reg: Registry, obj: Obj, why: str) -> errors.APIError:
    """403 as admission.NewForbidden words it: `pods "web-1" is forbidden: <why>`."""
    return errors.forbidden(reg.rt.resource, reg.rt.group, obj["metadata"].get("name") or "", why)
