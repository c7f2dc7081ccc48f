"""The `Process` workload runtime: each container of a pod on a node of a `workloadRuntime:
Process` pool runs its `command` + `args` as a real process on the host, driven by the pod
workers (`lks.nodes.pods`) through the `Runtime` interface of `lks.nodes.runtime`. Here are its
pods' lifecycle and the context of exec and probes; a container is started in
`lks.nodes.launch` and stopped in `lks.nodes.termination`, and the records of both are in
`lks.nodes.instances`.

What a container gets, and where it differs from a container on AKS:

- The image is not pulled: it is reported as given, normalized the way containerd reports it
  (`busybox` → `docker.io/library/busybox:latest`, with a stable made-up `imageID`), and the
  command runs from the host's filesystem. The common public images' configuration
  (`lks.nodes.images`: ENTRYPOINT, CMD, WORKDIR, ENV, their programs found on the host) applies
  Kubernetes' `command`/`args` rules; a container of another image without `command` cannot
  start (its entrypoint is unknown): it waits with `CreateContainerError` and a Warning event.
  A command that is not found ends the container at once with exit code 128, `StartError`.
- The process runs in a session (process group) of its own, so stopping a container signals
  its whole tree: `preStop`, SIGTERM, the grace period, then SIGKILL, as kubelet. When the
  container's main process exits, what is left of its group is killed (a container ends with
  its init process). No process outlives the service: the node agents stop theirs on shutdown
  (SIGTERM, 2 s, SIGKILL); if the service is killed, each container's main process dies with
  it (`PR_SET_PDEATHSIG`) and what it forked is killed when the service starts again
  (`lks.nodes.children.sweep`). After a restart the pods of Process nodes start their
  containers again (restartCount + 1, lastState `Unknown`, exit code 255), as after a reboot.
  A control-plane restart (an upgrade) is not one: the runtime is `park`ed with its processes
  running and the next pod workers of the cluster `take_over` and adopt them (`lks.nodes.pods`).
  Processes are forked off the event loop (`lks.nodes.children`).
- Environment: as kubelet builds it (`lks.nodes.podenv`); `KUBERNETES_SERVICE_HOST`/`PORT` reach
  the cluster's API for real (`lks.nodes.apiaccess`), with the pod's service-account token,
  requested and refreshed as kubelet does (`lks.nodes.podtokens`).
- Isolation, when the service runs as root: a UTS namespace (hostname = pod name) and a mount
  namespace in which the pod's volumes (`lks.nodes.podvolumes`, files under the cluster's data
  directory) are bind-mounted at their `mountPath` (`lks.nodes.namespaces`). Processes share
  the host's network, PID and IPC namespaces, users and filesystem (no cgroup limits, no
  seccomp, no user namespace). Without root there are no namespaces: the hostname is the
  host's (`HOSTNAME` is still the pod name), nothing is mounted, each mounted volume's
  directory is given as `LKS_VOLUME_<VOLUME NAME>` (upper case, `-` as `_`), and a missing
  `workingDir` fails the container (`CreateContainerError`).
- Network, when the service runs as root: each pod has a network namespace of its own with
  its IP from the node's pod CIDR on a veth into its node's bridge (`lks.net.podnet`); its
  containers join it, so two pods can both listen on port 80, and pods of one cluster reach
  each other by IP across nodes, never another cluster's. `/etc/resolv.conf` and `/etc/hosts`
  are kubelet's (`lks.net.dnsconfig`), bind-mounted, and the cluster's DNS (`lks.net.dns`)
  answers on its service IP inside the cluster's network; the cluster's API is on the pod's
  own 127.0.0.1 as on the host's (`lks.nodes.apiaccess`, `lks.net.relay`) and on the
  `kubernetes` Service's IP; Service VIPs, NodePorts (on the nodes' InternalIPs) and hostPorts
  work as kube-proxy's nftables mode and the portmap plugin program them (`lks.net.proxy`).
  Probes, exec and port-forward run in the pod's namespace. `hostNetwork` pods share the host's. Without root the processes share the
  host's network namespace, so a server listening on port 8080 listens on the host's 8080 and
  two pods cannot use the same port; the pod still gets an IP from the node's pod CIDR for
  Services and Endpoints, which nothing routes; port-forward and probes go to 127.0.0.1, and
  the Node's `lks.dev/pod-network` annotation says so.
- Output goes to per-container log files in the CRI format (`lks.nodes.containerlogs`; the
  current and the previous instance's, not rotated by size); `lks.nodes.kubelets` serves them,
  exec, attach (`stdin`, `tty`) and port-forward to the API server. The files go when the pod
  is deleted.
- Probes (exec, httpGet, tcpSocket) run on the cluster's clock (`lks.nodes.probes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shutil
import signal
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lks.kube.cluster import Cluster
from lks.net import dns as clusterdns
from lks.net import podnet, relay
from lks.net import proxy as serviceproxy
from lks.net.dns import server as dnsserver
from lks.net.netpol import controller as netpol
from lks.nodes import apiaccess, children, images, launch, namespaces, podtokens, termination
from lks.nodes import runtime as runtimes
from lks.nodes.instances import RESTARTED, Instance, PodProcesses, all_instances
from lks.nodes.runtime import Container, Sandbox

log = logging.getLogger("lks.nodes.process")

Obj = dict[str, Any]
Notify = Callable[[str, str, list[tuple[str, str, str]]], None]  # (namespace, name, events)

STOP_NODE_GRACE = 2.0  # seconds the processes of a stopping node get between SIGTERM and SIGKILL
API_SERVICE = "kubernetes-service"  # the key of the `kubernetes` Service's listener in `api`


class ProcessRuntime(launch.Launcher, termination.Termination, runtimes.SimulatedRuntime):
    """Sandboxes (pod IPs) as the simulated runtime has them, containers as host processes."""

    def __init__(self, *, cluster: Cluster, data_dir: Path | None = None, tls: ssl.SSLContext | None = None,
                 notify: Notify | None = None):
        super().__init__(clock=cluster.clock)
        self.cluster = cluster
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix=f"lks-{cluster.id}-"))
        self.notify: Notify = notify or (lambda _ns, _name, _events: None)
        self.api = apiaccess.APIAccess(cluster, tls=tls)
        self.tokens = podtokens.PodTokens(cluster)
        self.namespaces = namespaces.available()
        self._pods: dict[str, PodProcesses] = {}  # by uid
        self._by_id: dict[str, Instance] = {}  # by container id
        self._spawner = children.Spawner()
        self._host_ips: dict[str, str] = {}  # pod uid -> its node's IP
        self.net = podnet.PodNetwork(data_dir=self.data_dir)
        self.relays = relay.Relays()  # the cluster's public endpoint on each pod's own loopback
        self.network = False  # whether pods get network namespaces (`start` finds out)
        # cluster DNS in the pod network: for which control plane, its listener (None: it failed)
        self._dns: tuple[Cluster, dnsserver.Listener | None] | None = None
        self.proxy: serviceproxy.Proxier | None = None  # Service VIPs in the pod network
        self._proxy_lock = asyncio.Lock()
        self._api_vip: str | None = None  # the `kubernetes` Service's IP, once served in the pod network
        self.started = False

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self.api.start()
        self.network = await self.net.start()
        netpol.attach(self.cluster.id, self.net.name if self.network else None)
        self.started = True

    def park(self) -> None:
        """The pod workers leave while the control plane restarts: the containers run on
        (their exits, probes and token refreshes go on) and nobody hears of changes until
        `take_over`."""
        self.notify = lambda _ns, _name, _events: None

    def take_over(self, cluster: Cluster, *, known: set[str] | None) -> None:
        """Serve `cluster`, the restarted control plane of the same id (its API endpoint, its
        token requests); the pods not in `known` (uids; None: not known yet) went meanwhile."""
        self.cluster, self.clock = cluster, cluster.clock
        self.api.cluster = cluster
        self.tokens.cluster = cluster
        if known is not None:
            for uid in [u for u in self._pods if u not in known]:
                self.purge(uid)

    async def close(self) -> None:
        for node in {p.node for p in self._pods.values()}:
            await self.stop_node(node)
        self.relays.close()
        if self.proxy is not None:
            await self.proxy.stop()
            self.proxy = None
        self._api_vip = None
        if self._dns is not None and self._dns[1] is not None:
            await self._dns[1].close()
        self._dns = None
        await self.net.close()
        self.network = False
        await self.tokens.close()
        await self.api.stop()
        self.started = False
        self._spawner.close()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _unplug(self, uid: str) -> None:
        """What listens in the pod's network namespace for it goes with its sandbox."""
        self.api.unserve(uid)
        self.relays.drop(uid)

    async def cluster_dns(self) -> None:
        """Have the cluster's DNS (started with its control plane) answer on its service IP in
        the pod network, and its Service VIPs work there, once per control plane (a restarted
        one serves anew)."""
        await self._service_proxy()
        if not self.network or (self._dns is not None and self._dns[0] is self.cluster):
            return
        running = clusterdns.get(self.cluster.id)
        if running is None or running.cluster is not self.cluster:
            return
        ip = self.cluster.dns_service_ip
        try:
            sockets = await self.net.service_sockets(ip)
            self._dns = (self.cluster, await running.serve(ip, 53, sockets=sockets))
        except OSError as err:
            log.warning("cluster DNS of %s is not served in its pod network: %s", self.cluster.name, err)
            self._dns = (self.cluster, None)  # tried: not again for this control plane

    async def _service_proxy(self) -> None:
        """The cluster's Service VIPs in the pod network (`lks.net.proxy`), one proxier per
        control plane; the `kubernetes` Service's IP is answered in process, as the API is on
        each pod's 127.0.0.1, and cluster DNS's by the DNS server: no rules for those."""
        async with self._proxy_lock:
            if not self.network or (self.proxy is not None and self.proxy.cluster is self.cluster):
                return
            if self.proxy is not None:
                await self.proxy.stop()
            skip = {self.cluster.dns_service_ip}
            cidr = self.cluster.service_cidr.split(",")[0].strip()
            api_ip = str(ipaddress.ip_network(cidr, strict=False).network_address + 1)
            if self._api_vip != api_ip:  # (the listener outlives a control-plane restart)
                try:
                    await self.api.serve_in(API_SERVICE, await self.net.service_listener(api_ip, 443))
                    self._api_vip = api_ip
                except OSError as err:
                    log.warning("the kubernetes Service of %s is not served in its pod network: %s",
                                self.cluster.name, err)
            if self._api_vip is not None:
                skip.add(self._api_vip)
            self.proxy = serviceproxy.Proxier(self.cluster, self.net, skip_ips=frozenset(skip))
            await self.proxy.start()

    # -- pods ----------------------------------------------------------------------------

    def pod_dir(self, uid: str) -> Path:
        return self.data_dir / "pods" / uid

    def _pod(self, sandbox: Sandbox, pod: Obj) -> PodProcesses:
        st = self._pods.get(sandbox.uid)
        if st is None or st.sandbox is not sandbox:
            meta = pod["metadata"]
            old = st
            grace = pod["spec"].get("terminationGracePeriodSeconds")
            st = self._pods[sandbox.uid] = PodProcesses(sandbox.uid, meta["namespace"], meta["name"], sandbox.node,
                                               self.pod_dir(sandbox.uid), sandbox,
                                               float(grace) if grace is not None else 30.0)
            if old is not None:
                st.instances = old.instances
        return st

    def find(self, uid: str) -> PodProcesses | None:
        return self._pods.get(uid)

    def running_containers(self) -> dict[str, dict[str, tuple[str, int]]]:
        """Read-only, for the metrics API (`lks.metrics`): the pods' running containers, by pod
        uid then container name: (container id, main process id)."""
        return {uid: {name: (found[-1].container.id, found[-1].pid)
                      for name, found in st.instances.items() if found and found[-1].running}
                for uid, st in self._pods.items()}

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        st = self._pods.get(sandbox.uid)
        if st is not None:
            await self._kill_pod(st)
        self._unplug(sandbox.uid)
        self.net.remove_pod(sandbox.uid)
        await super().remove_sandbox(sandbox)

    def purge(self, uid: str) -> None:
        """The pod is gone from the API: its processes (if any), logs and volumes go."""
        st = self._pods.pop(uid, None)
        self._host_ips.pop(uid, None)
        if st is not None:
            for inst in all_instances(st):
                inst.signal(signal.SIGKILL)
                self._by_id.pop(inst.container.id, None)
        self.tokens.forget(uid)
        self._unplug(uid)
        self.net.remove_pod(uid)
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)

    async def _kill_pod(self, st: PodProcesses) -> None:
        live = [i for i in all_instances(st) if i.running]
        for inst in live:
            inst.signal(signal.SIGKILL)
        for inst in live:
            await inst.done.wait()

    def forget_node(self, node: str) -> None:
        for uid, st in list(self._pods.items()):
            if st.node == node:
                for inst in all_instances(st):
                    inst.signal(signal.SIGKILL)
                    for task in inst.tasks:
                        task.cancel()
                    self._by_id.pop(inst.container.id, None)
                del self._pods[uid]
                self._host_ips.pop(uid, None)
                self.tokens.forget(uid)
                self._unplug(uid)
        self.net.remove_node(node)
        super().forget_node(node)

    async def stop_node(self, node: str, *, grace: float = STOP_NODE_GRACE) -> None:
        """The node's agent stops (the service shuts down): SIGTERM, then SIGKILL after `grace`
        seconds (real ones), and wait until every process has gone."""
        live = [i for st in self._pods.values() if st.node == node for i in all_instances(st) if i.running]
        for inst in live:
            inst.signal(signal.SIGTERM)
        if live:
            waits = [asyncio.ensure_future(i.done.wait()) for i in live]
            _, pending = await asyncio.wait(waits, timeout=grace)
            for w in pending:
                w.cancel()
            for inst in live:
                if not inst.done.is_set():
                    inst.signal(signal.SIGKILL)
            for inst in live:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(inst.done.wait(), 5.0)

    # -- containers ----------------------------------------------------------------------

    def adopt_container(self, sandbox: Sandbox, pod: Obj, spec: Obj, *, init: bool, container_id: str,
                        image: str, image_id: str, started: float) -> Container:
        """A container the stored status shows running: the one this runtime still runs (taken
        over), else its process went with the service, so it counts as exited (and restarts,
        as after a node reboot)."""
        st = self._pods.get(sandbox.uid)
        inst = st.current(spec["name"]) if st is not None and st.sandbox is sandbox else None
        if inst is not None and inst.container.id == container_id:
            return inst.container  # running, or exited meanwhile: the pod worker sees which
        now = self.clock.now()
        children.sweep(self.pod_dir(sandbox.uid) / "pids" / spec["name"], f"HOSTNAME={pod['metadata']['name']}")
        return Container(name=spec["name"], id=container_id, image=image, image_id=image_id, created=started,
                         started=started, exits=now, exit_code=RESTARTED, reason="Unknown")

    def sweep(self, known: set[str]) -> None:
        """Remove the directories of pods that are gone (deleted while the service was down)."""
        root = self.data_dir / "pods"
        if root.is_dir():
            for d in root.iterdir():
                if d.name not in known:
                    shutil.rmtree(d, ignore_errors=True)

    async def run_sandbox(self, pod: Obj, *, node: str, pod_cidr: str | None, host_ip: str) -> Sandbox:
        sandbox = await super().run_sandbox(pod, node=node, pod_cidr=pod_cidr, host_ip=host_ip)
        self._host_ips[sandbox.uid] = host_ip
        return sandbox

    def adopt(self, pod: Obj, *, node: str, pod_cidr: str | None, host_ip: str) -> Sandbox | None:
        st = self._pods.get(pod["metadata"]["uid"])
        if st is not None and st.sandbox.ready and st.node == node \
                and st.sandbox.ip == (pod.get("status") or {}).get("podIP"):
            self._host_ips[st.uid] = host_ip
            return st.sandbox  # taken over with its containers: the same sandbox
        sandbox = super().adopt(pod, node=node, pod_cidr=pod_cidr, host_ip=host_ip)
        if sandbox is not None:
            self._host_ips[sandbox.uid] = host_ip
        return sandbox


    # -- for probes and exec -------------------------------------------------------------

    def command(self, inst: Instance, command: list[str]) -> tuple[list[str], str | None]:
        """How to run `command` in the container's context: (argv, cwd); the image's programs
        are the host's, as for the container's own command."""
        with contextlib.suppress(images.Unavailable):  # then it fails as a command not found
            command = images.host_argv(images.lookup(inst.container.image), command)
        net = self.net.pod_netns(inst.pod.uid)
        if inst.namespaced and inst.running:
            wd = inst.workdir or "/"
            return ["nsenter", "-t", str(inst.pid), "-u", "-m", "-r", *(["-n"] if net else []), f"--wd={wd}",
                    "--", *command], None
        if net:
            return ["nsenter", f"--net={podnet.netns.path(net)}", "--", *command], inst.workdir
        return command, inst.workdir

    def probe_host(self, inst: Instance) -> str:
        """Where a probe without `host` goes: the pod's IP (kubelet's), or 127.0.0.1 for a pod
        on the host's network here."""
        return inst.pod.sandbox.ip if self.net.pod_netns(inst.pod.uid) else "127.0.0.1"

    async def open_connection(self, uid: str, host: str, port: int, *, ssl: Any = None) -> Any:
        """A TCP connection from inside the pod's network (probes, port-forward)."""
        return await self.net.open_connection(uid, host, port, ssl=ssl)

    def probe_event(self, inst: Instance, type_: str, reason: str, message: str) -> None:
        self.notify(inst.pod.namespace, inst.pod.name, [(type_, reason, message)])

    def probe_changed(self, inst: Instance) -> None:
        self.notify(inst.pod.namespace, inst.pod.name, [])
