"""The scheduler: assigns each pending pod a node, as kube-scheduler's default profile does.

`scheduler` is the controller (informers, the scheduling loop, bindings, failures);
`framework` runs one cycle over the `plugins` (node-local filters and scores), `spread`
(PodTopologySpread) and `affinity` (InterPodAffinity); `preemption` makes room for pods of
higher priority; `queue` orders pending pods and backs off failed ones; `snapshot` is the
incrementally kept picture of nodes and placed pods, in the terms of `resources` and `terms`.
Bindings are written through `lks.kube.subresources.binding`.
"""

from lks.controllers.scheduler.scheduler import NAME, Scheduler

__all__ = ["NAME", "Scheduler"]
