"""The container runtime under the node agents (kubelet's CRI side): pod sandboxes with their IPs,
and containers that start, run and exit. `Runtime` is the interface the pod worker
(`lks.nodes.pods`) drives; `SimulatedRuntime` runs nothing and only keeps times, which is what
makes thousands of nodes cheap. `lks.nodes.process.ProcessRuntime` runs containers as host
processes instead, for the nodes of `workloadRuntime: Process` pools.

A simulated container is a record of when it starts, when it exits and with which code. Nothing
sleeps: the pod worker reads the record at the clock's current time (created, running, exited)
and asks to be woken at the next time in it. One `SimulatedRuntime` serves every node of a
cluster; IPs come from each node's `spec.podCIDR` the way kubenet's host-local IPAM hands them
out: .1 is the bridge's, pods get .2 to .254 in turn (the address after the last one given,
wrapping around), so a freed address is not reused at once. An Azure CNI (flat) node has no pod
CIDR: its pods take the `maxPods` addresses of the node subnet preallocated after the node's
own (`pod_range`), handed out the same way.

Pods steer the simulation with annotations (the pod-wide ones apply to the regular containers;
add `.<container name>` to the key for one container, init containers included):

- `lks.dev/simulate-run-seconds`: how long a container runs before it exits on its own.
  Containers of `restartPolicy: Never`/`OnFailure` pods run `Timings.run` (1 s) by default;
  those of `Always` pods run until stopped unless this or the exit code is set. Init containers
  run `Timings.init_run`; sidecars (init containers with `restartPolicy: Always`) run on.
- `lks.dev/simulate-exit-code`: the exit code of that exit (default 0; non-zero is a failure,
  which `restartPolicy` may answer with restarts and CrashLoopBackOff).
- `lks.dev/simulate-start-seconds`: image pull plus start, from creation to running
  (default `Timings.start`, a few milliseconds).
- `lks.dev/simulate-stop-seconds`: how long a container takes to exit after SIGTERM (default
  `Timings.stop`); one still running when the grace period ends is killed (exit code 137).

Readiness needs no annotation: a container is ready once running, or `initialDelaySeconds` after
that when it has a readiness (or startup) probe. Probes are not run.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import random
from dataclasses import dataclass
from typing import Any, Protocol

from lks.clock import Clock

log = logging.getLogger(__name__)

Obj = dict[str, Any]

ANNOTATION = "lks.dev/simulate-"
RUN, EXIT_CODE, START, STOP = "run-seconds", "exit-code", "start-seconds", "stop-seconds"
KILLED = 137  # 128 + SIGKILL: what a container killed at the end of its grace period exits with


@dataclass(frozen=True)
class Timings:
    """Default simulated durations, in seconds of the cluster's clock."""

    start: float = 0.005  # creation (pull, create, start) to running
    run: float = 1.0  # a container of a Never/OnFailure pod, until it exits
    init_run: float = 0.005  # an init container, until it exits
    stop: float = 0.0  # SIGTERM to exit
    restart: float = 0.0  # a restarted container, creation to running (the image is there)


@dataclass(slots=True)
class Container:
    """One container instance as the runtime reports it. Its state at time t: created (waiting
    to run) before `started`, running until `exits` (None: until stopped), exited after."""

    name: str
    id: str  # 64 hex digits, as containerd's
    image: str  # the normalized reference the runtime reports: docker.io/library/nginx:latest
    image_id: str  # repo@sha256:digest
    created: float
    started: float
    exits: float | None = None
    exit_code: int = 0
    reason: str = ""  # set when kubelet's usual one (Completed | Error, by the code) does not apply
    stopping: bool = False  # SIGTERM sent
    message: str = ""  # the terminated state's message, when the runtime has one
    # Probe results of a runtime that runs probes (None: by the probes' initial delays, as the
    # simulated runtime has it): whether the startup probe has succeeded, whether it is ready.
    started_ok: bool | None = None
    ready: bool | None = None

    def exited(self, now: float) -> bool:
        return self.exits is not None and now >= self.exits

    def next_change(self, now: float) -> float | None:
        if now < self.started:
            return self.started
        if self.exits is not None and now < self.exits:
            return self.exits
        return None


@dataclass(slots=True)
class Sandbox:
    """A pod's sandbox: its network namespace (and IP) on a node."""

    uid: str
    node: str
    ip: str
    host_network: bool = False
    ready: bool = True  # False once removed: PodReadyToStartContainers goes False


class CreateError(Exception):
    """A container the runtime cannot create or start. The pod worker shows `reason` and
    `message` as the container's waiting state (CreateContainerError, CreateContainerConfigError,
    or ContainerCreating for a volume that cannot be set up), records `event` (kubelet's Warning
    `Failed` "Error: ..." by default) and tries again after a back-off."""

    def __init__(self, reason: str, message: str, *, event: tuple[str, str] | None = None):
        super().__init__(message)
        self.reason, self.message = reason, message
        self.event = event or ("Failed", f"Error: {message}")


class NetworkNotReady(Exception):
    """The node has no pod CIDR yet (kubenet and overlay need one before any sandbox), or no
    address is left in it."""


# What containerd's CRI reports as its NetworkReady condition while it has no CNI config. On AKS
# kubenet and Azure CNI overlay nodes that config is written from the node's pod CIDR, so a node
# without one shows this, and kubelet keeps the node NotReady ("container runtime network not
# ready: " + this) until it has one.
NETWORK_NOT_READY = ("NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: "
                     "cni plugin not initialized")


# Where a node's pods get their IPs (`NodeTemplate.pod_network`), by the cluster's network plugin:
NODE_CIDR = "node-cidr"  # kubenet, Azure CNI Overlay: the node's spec.podCIDR (`lks.controllers.nodeipam`)
NODE_SUBNET = "node-subnet"  # Azure CNI (flat): `maxPods` addresses of the node subnet, preallocated
NO_CNI = "none"  # networkPlugin none: the user brings a CNI; until then the network is not ready
# lks's stand-in, on the Node, for the config file a CNI's DaemonSet writes to /etc/cni/net.d (its
# value: the CNI's name); with `none`, a node's network is ready once it is there (and a pod CIDR)
CNI_ANNOTATION = "lks.dev/cni-config"


def network_error(pod_cidr: str | None, pod_network: str = NODE_CIDR, cni: str | None = None) -> str | None:
    """Why a node's pod network is not ready, as the runtime's NetworkReady condition reads
    (None: it is ready). The rule of both runtimes here (`SimulatedRuntime` and the process
    runtime built on it): pods get their IPs out of the node's pod CIDR, so a node needs one;
    an Azure CNI node has its pods' addresses from boot (AKS writes its CNI config with the
    VM); a node of a cluster without a CNI (`none`) needs one installed too: lks runs no
    third-party CNI, so "installed" is the Node's `CNI_ANNOTATION` (`cni`), which a CNI's
    DaemonSet (or the user, `kubectl annotate node`) sets where the real one writes its
    config file; until then the node is NotReady, as an AKS one is. Its pods then take
    addresses of its pod CIDR (host-local, as Calico's and Cilium's Kubernetes IPAM do).
    The node agent (`lks.nodes.agent`) posts its Ready condition by this rule."""
    if pod_network == NODE_SUBNET:
        return None
    if pod_network == NO_CNI and not cni:
        return NETWORK_NOT_READY
    return None if pod_cidr and _valid_cidr(pod_cidr) else NETWORK_NOT_READY


def subnet_range(address: str, subnet: str, count: int) -> str:
    """An Azure CNI node's pod addresses: the `count` addresses after the node's own in its
    subnet (AKS preallocates `maxPods` secondary IPs on the node's NIC: a node at .4 with
    maxPods 30 has .5-.34, the next node is .35), written `first-last/prefix`, which
    `HostLocal` takes like a CIDR."""
    net = ipaddress.ip_network(subnet, strict=False)
    first = ipaddress.ip_address(address) + 1
    return f"{first}-{first + count - 1}/{net.prefixlen}"


def pod_range(spec: Obj | None, *, pod_network: str = NODE_CIDR, address: str = "", subnet: str = "",
              max_pods: int = 0, cni: str | None = None) -> str | None:
    """Where a node's pods get their IPs: its spec.podCIDR, or an Azure CNI node's preallocated
    range of the node subnet (`subnet_range`); None while there is none (no CIDR yet, no CNI
    installed: `cni`, the Node's `CNI_ANNOTATION`)."""
    if pod_network == NODE_SUBNET:
        return subnet_range(address, subnet, max_pods) if address and subnet and max_pods > 0 else None
    if pod_network == NO_CNI and not cni:
        return None
    return (spec or {}).get("podCIDR")


def _bounds(cidr: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int, int]:
    """(network, first, last usable address) of a pod CIDR (.1 is the bridge's gateway) or of a
    `first-last/prefix` range of a node subnet (all of it the pods')."""
    if "-" in cidr:
        span, _, prefix = cidr.partition("/")
        low, _, high = span.partition("-")
        first, last = ipaddress.ip_address(low), ipaddress.ip_address(high)
        network = ipaddress.ip_network(f"{first}/{prefix}", strict=False)
        if first.version != last.version or first > last or last not in network:
            raise ValueError(f"bad pod address range {cidr!r}")
        return network, int(first), int(last)
    network = ipaddress.ip_network(cidr, strict=False)
    return (network, int(network.network_address) + 2,
            int(network.broadcast_address) - (1 if network.version == 4 else 0))


@functools.lru_cache(maxsize=4096)  # asked on every heartbeat of every node
def _valid_cidr(cidr: str) -> bool:
    try:
        _bounds(cidr)
    except ValueError:
        return False
    return True


class Runtime(Protocol):
    """What the pod worker asks of a container runtime: a slice of CRI, keyed by node so one
    runtime object can serve many nodes. Coroutines where a real runtime does I/O."""

    async def run_sandbox(self, pod: Obj, *, node: str, pod_cidr: str | None, host_ip: str) -> Sandbox:
        """Create the pod's sandbox and give it an IP; raises `NetworkNotReady`."""
        ...

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        """Tear the sandbox down (its IP is free again)."""
        ...

    def has_image(self, node: str, image: str) -> bool:
        """Whether `node` already holds `image` (for `imagePullPolicy: IfNotPresent`)."""
        ...

    async def start_container(self, sandbox: Sandbox, pod: Obj, spec: Obj, *, init: bool,
                              restart: bool) -> Container:
        """Create and start a container of `pod` (`spec` is its entry in the PodSpec)."""
        ...

    async def stop_containers(self, sandbox: Sandbox, pod: Obj, containers: list[Container], *,
                              grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; the exits are set on the containers.
        Called again with a shorter grace period for containers already stopping, it kills
        them sooner."""
        ...

    def adopt(self, pod: Obj, *, node: str, pod_cidr: str | None, host_ip: str) -> Sandbox | None:
        """The sandbox a pod already has by its stored status (the service restarted while the
        node kept running it), or None if it has none."""
        ...

    def adopt_container(self, sandbox: Sandbox, pod: Obj, spec: Obj, *, init: bool, container_id: str,
                        image: str, image_id: str, started: float) -> Container:
        """A container still running in an adopted sandbox."""
        ...

    def forget_node(self, node: str) -> None:
        """The node is gone or its agent stopped: drop what the runtime keeps for it."""
        ...


class HostLocal:
    """Host-local IPAM for one node's pod CIDR: .2 up to the last-but-one address, in turn; or,
    for an Azure CNI node, its preallocated `first-last/prefix` range of the node subnet
    (`subnet_range`): every address of it, `network` being the subnet's prefix around it."""

    def __init__(self, cidr: str):
        self.network, self._first, self._last = _bounds(cidr)
        self._used: set[int] = set()
        self._next = self._first

    def allocate(self) -> str | None:
        """The next free address after the last one given (wrapping), or None if all are used."""
        if len(self._used) > self._last - self._first:
            return None
        n = self._next
        while True:  # ends: at least one address is free
            if n > self._last:
                n = self._first
            if n not in self._used:
                self._used.add(n)
                self._next = n + 1
                return str(ipaddress.ip_address(n))
            n += 1

    def claim(self, ip: str) -> bool:
        """Take a particular address (an adopted pod's), if it is in range and free."""
        try:
            n = int(ipaddress.ip_address(ip))
        except ValueError:
            return False
        if not self._first <= n <= self._last or n in self._used:
            return False
        self._used.add(n)
        return True

    def release(self, ip: str) -> None:
        try:
            self._used.discard(int(ipaddress.ip_address(ip)))
        except ValueError:
            pass


class SimulatedRuntime:
    """Containers as timestamps; see the module docstring for the annotations it reads."""

    def __init__(self, *, clock: Clock, timings: Timings | None = None):
        self.clock = clock
        self.timings = timings or Timings()
        self._ipam: dict[str, HostLocal] = {}  # node -> its pod CIDR's allocator
        self._images: dict[str, set[str]] = {}  # node -> images pulled there

    # -- sandboxes -----------------------------------------------------------------------

    def _network(self, node: str, pod_cidr: str | None) -> HostLocal:
        ipam = self._ipam.get(node)
        if ipam is None:
            if not pod_cidr:
                raise NetworkNotReady(f"node {node} has no pod CIDR yet")
            if network_error(pod_cidr) is not None:
                raise NetworkNotReady(f"node {node}: bad pod CIDR {pod_cidr!r}")
            ipam = self._ipam[node] = HostLocal(pod_cidr)
        return ipam

    async def run_sandbox(self, pod: Obj, *, node: str, pod_cidr: str | None, host_ip: str) -> Sandbox:
        uid = pod["metadata"]["uid"]
        if pod["spec"].get("hostNetwork"):
            return Sandbox(uid, node, host_ip, host_network=True)
        ip = self._network(node, pod_cidr).allocate()
        if ip is None:
            raise NetworkNotReady(f"node {node}: no free address left in {pod_cidr}")
        return Sandbox(uid, node, ip)

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        sandbox.ready = False
        if not sandbox.host_network:
            ipam = self._ipam.get(sandbox.node)
            if ipam is not None:
                ipam.release(sandbox.ip)

    def adopt(self, pod: Obj, *, node: str, pod_cidr: str | None, host_ip: str) -> Sandbox | None:
        status = pod.get("status") or {}
        uid, ip = pod["metadata"]["uid"], status.get("podIP")
        if not ip:
            return None
        if pod["spec"].get("hostNetwork"):
            return Sandbox(uid, node, host_ip, host_network=True)
        try:
            claimed = self._network(node, pod_cidr).claim(ip)
        except NetworkNotReady:
            claimed = False
        if not claimed:
            log.warning("pod %s: its IP %s is taken or outside %s; it gets a new sandbox",
                        pod["metadata"].get("name"), ip, pod_cidr)
            return None
        return Sandbox(uid, node, ip)

    def forget_node(self, node: str) -> None:
        self._ipam.pop(node, None)
        self._images.pop(node, None)

    # -- containers ----------------------------------------------------------------------

    def has_image(self, node: str, image: str) -> bool:
        return normalize_image(image) in self._images.get(node, ())

    async def start_container(self, sandbox: Sandbox, pod: Obj, spec: Obj, *, init: bool,
                              restart: bool) -> Container:
        now = self.clock.now()
        notes = pod["metadata"].get("annotations") or {}
        image = normalize_image(spec.get("image") or "")
        self._images.setdefault(sandbox.node, set()).add(image)
        delay = _seconds(notes, START, spec["name"], True)
        t = self.timings
        started = now + (delay if delay is not None else (t.restart if restart else t.start))
        exits, code = self._plan(pod, spec, notes, init=init, started=started)
        return Container(name=spec["name"], id=f"{random.getrandbits(256):064x}", image=image, image_id=image_id(image),
                         created=now, started=started, exits=exits, exit_code=code)

    def adopt_container(self, sandbox: Sandbox, pod: Obj, spec: Obj, *, init: bool, container_id: str,
                        image: str, image_id: str, started: float) -> Container:
        notes = pod["metadata"].get("annotations") or {}
        self._images.setdefault(sandbox.node, set()).add(image)
        exits, code = self._plan(pod, spec, notes, init=init, started=started)
        return Container(name=spec["name"], id=container_id, image=image, image_id=image_id,
                         created=started, started=started, exits=exits, exit_code=code)

    def _plan(self, pod: Obj, spec: Obj, notes: dict[str, str], *, init: bool,
              started: float) -> tuple[float | None, int]:
        """When a container started at `started` exits on its own (None: never), and its code."""
        name = spec["name"]
        pod_wide = not init  # pod-wide annotations steer the regular containers
        run = _seconds(notes, RUN, name, pod_wide)
        code = _exit_code(notes, name, pod_wide)
        if run is None and not (init and spec.get("restartPolicy") == "Always"):  # sidecars run on
            if init:
                run = self.timings.init_run
            elif code is not None or (pod["spec"].get("restartPolicy") or "Always") != "Always":
                run = self.timings.run
        return (started + run if run is not None else None), code or 0

    async def stop_containers(self, sandbox: Sandbox, pod: Obj, containers: list[Container], *,
                              grace: float) -> None:
        now = self.clock.now()
        notes = pod["metadata"].get("annotations") or {}
        for c in containers:
            if c.exited(now):
                continue
            if c.stopping:  # SIGTERM was sent: only a shorter grace period changes anything
                if c.exits is None or now + grace < c.exits:
                    c.exits, c.exit_code = now + grace, KILLED
                continue
            c.stopping = True
            if now < c.started:  # still being created: it never runs
                c.started = c.exits = now
                c.exit_code, c.reason = KILLED, "ContainerStatusUnknown"
                continue
            stop = _seconds(notes, STOP, c.name, True)
            stop = self.timings.stop if stop is None else stop
            if stop <= grace:
                # SIGTERM handled: it exits in time, cleanly (unless it was about to exit anyway)
                if c.exits is None or now + stop < c.exits:
                    c.exits, c.exit_code = now + stop, 0
            elif c.exits is None or now + grace < c.exits:
                c.exits, c.exit_code = now + grace, KILLED


# -- helpers ------------------------------------------------------------------------------


def _annotation(notes: dict[str, str], what: str, container: str, pod_wide: bool) -> str | None:
    key = ANNOTATION + what
    value = notes.get(f"{key}.{container}")
    if value is None and pod_wide:
        value = notes.get(key)
    return value


def _seconds(notes: dict[str, str], what: str, container: str, pod_wide: bool) -> float | None:
    value = _annotation(notes, what, container, pod_wide)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        log.debug("annotation %s%s=%r is not a number of seconds; ignored", ANNOTATION, what, value)
        return None
    return seconds if seconds >= 0 else None


def _exit_code(notes: dict[str, str], container: str, pod_wide: bool) -> int | None:
    value = _annotation(notes, EXIT_CODE, container, pod_wide)
    if value is None:
        return None
    try:
        return int(value) & 0xFF  # what a process can return
    except ValueError:
        log.debug("annotation %s%s=%r is not an exit code; ignored", ANNOTATION, EXIT_CODE, value)
        return None


_NORMALIZED: dict[str, str] = {}


def normalize_image(ref: str) -> str:
    """An image reference as containerd reports it, registry and tag spelled out:
    `nginx` → `docker.io/library/nginx:latest`; a digest reference keeps its digest."""
    out = _NORMALIZED.get(ref)
    if out is not None:
        return out
    name, _, digest = ref.partition("@")
    tag = ""
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = "docker.io/" + name  # Docker Hub
        first, _, rest = name.partition("/")
    if first == "docker.io" and "/" not in rest:
        name = f"docker.io/library/{rest}"
    out = f"{name}@{digest}" if digest else f"{name}:{tag or 'latest'}"
    if len(_NORMALIZED) < 4096:
        _NORMALIZED[ref] = out
    return out


def image_id(image: str) -> str:
    """The repo digest of a normalized image: a pinned digest as given, else a stable made-up
    one, so every pod of an image shows the same imageID, as with a real registry."""
    if "@" in image:
        return image
    repo = image[:image.rfind(":")]
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def image_size(image: str) -> int:
    """A plausible size in bytes for a pulled image (stable per image), for the Pulled event."""
    return 20_000_000 + int(hashlib.sha256(image.encode()).hexdigest()[:8], 16) % 80_000_000
