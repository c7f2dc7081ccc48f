"""Node agents: node pools materialized as Nodes in a hosted cluster, with simulated kubelets
that register, heartbeat through Leases and report status (`template` → `pool` → `agent`), and
run the pods bound to them (`pods`, over the `runtime` interface, `podstatus` and
`statusmanager`): simulated containers, or real processes on nodes of `workloadRuntime: Process`
pools (`process`, with `podenv`, `podvolumes`, `namespaces`, `probes`, `containerlogs` and
`apiaccess`). `kubelets` serves logs, exec, attach and port-forward (`streams`)."""

from lks.nodes.agent import Heartbeats, NodeAgent
from lks.nodes.pool import Addresses, NodePool
from lks.nodes.template import NodeTemplate, parse_taint

__all__ = ["Addresses", "Heartbeats", "NodeAgent", "NodePool", "NodeTemplate", "parse_taint"]
