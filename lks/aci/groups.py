"""The container groups service: documents in the management store (`lks.arm.documents`),
long-running creates and starts as the rest of the management API (`lks.arm.operations`), each
group run by `lks.aci.runtime` from its document (`spec`), and what it is billed (`usage`).
`lks.arm.containergroups` is its HTTP face.

Addresses: a Public group's IP is a loopback address of its own from `PUBLIC_RANGE` (its ports
served there, relayed into its namespace); its namespace address comes from `INNER_RANGE`. A
Private group takes the next free address of its delegated subnet (Azure keeps the first four
and the last), which is its namespace address.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import ipaddress
import os
import shlex
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from lks import store
from lks.aci import model, runtime, usage
from lks.arm import documents
from lks.arm.errors import ARMError
from lks.arm.operations import Operations
from lks.nodes import containerlogs, images, podenv
from lks.nodes.streams import LogOptions

Doc = dict[str, Any]
PRIVATE = documents.PRIVATE
PUBLIC_RANGE = ipaddress.ip_network("127.227.0.0/16")
INNER_RANGE = ipaddress.ip_network("10.237.0.0/16")
INNER_BRIDGE = "aci-public"
START_WAIT = 5.0  # how long a create or start waits for its containers to start
# (subscription, group, vnet, subnet) -> (vnet doc, subnet doc) or (None, None)
SubnetLookup = Callable[[str, str, str, str], Awaitable[tuple[Doc | None, Doc | None]]]


def group_id(subscription: str, group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{model.TYPE}/{name}"


def runtime_key(resource_id: str) -> str:
    return hashlib.sha256(resource_id.lower().encode()).hexdigest()[:16]


class ContainerGroups:
    def __init__(self, *, docs: documents.Documents, operations: Operations, data_dir: Path,
                 subnets: SubnetLookup | None = None, network: bool = True):
        self.docs = docs
        self.operations = operations
        self.meter = usage.Meter()
        self.runtime = runtime.Runtime(data_dir=data_dir, network=network, on_end=self.meter.pause)
        self.subnets = subnets
        operations.register("containerGroups.create", self._run_work)
        operations.register("containerGroups.start", self._run_work)
        operations.register("containerGroups.delete", self._delete_work)

    async def start(self) -> None:
        """Bring back the groups that ran before the service stopped."""
        await self.runtime.start()
        for doc in await self.all(None):
            private = doc["properties"].get(PRIVATE) or {}
            if doc["properties"].get("provisioningState") == "Succeeded" and not private.get("stopped"):
                await self._run(doc)

    async def stop(self) -> None:
        for key in list(self.runtime.groups):
            self.meter.stop(key)
        await self.runtime.close()

    # -- documents ---------------------------------------------------------------------------

    async def all(self, subscription: str | None, group: str | None = None) -> list[Doc]:
        prefix = documents.PREFIX + (f"/subscriptions/{subscription.lower()}/" if subscription else "/subscriptions/")
        res = await self.docs.store.list(prefix)
        marker = "/providers/" + model.TYPE.lower() + "/"
        out = []
        for kv in res.items:
            head, sep, tail = kv.key.partition(marker)
            if not sep or "/" in tail:
                continue
            if group is not None and head.split("/")[5] != group.lower():
                continue
            out.append(orjson.loads(kv.value))
        return out

    async def load(self, subscription: str, group: str, name: str) -> documents.Stored | None:
        return await self.docs.get(group_id(subscription, group, name))

    # -- requests -------------------------------------------------------------------------------

    async def put(self, subscription: str, group: str, name: str, body: Any) -> tuple[Doc, Doc, bool]:
        """Store the group and start its create: (document, operation, created)."""
        doc = model.admit(body, name=name)
        rid = group_id(subscription, group, name)
        stored = await self.docs.get(rid)
        if stored is not None and self.operations.running(rid) is not None:
            raise ARMError("Conflict", f"The container group '{name}' is being changed by another operation; "
                           "retry when it has finished.", 409)
        doc.update(id=stored.doc["id"] if stored else rid, name=name, type=model.TYPE)
        props = doc["properties"]
        private: Doc = {}
        if stored is not None:
            private = copy.deepcopy(stored.doc["properties"].get(PRIVATE) or {})
            private.pop("stopped", None)
        await self._address(doc, private, subscription)
        props[PRIVATE] = private
        props["provisioningState"] = "Pending" if stored is None else "Updating"
        try:
            if stored is None:
                await self.docs.create(doc)
            else:
                await self.docs.update(doc, stored.revision)
        except (store.KeyExists, store.RevisionConflict) as err:
            raise ARMError("Conflict", "The resource was changed by another request; retry.", 409) from err
        op = await self.operations.begin("containerGroups.create", subscription=subscription,
                                         location=doc["location"], resource_id=rid, action=f"create {name}")
        return doc, op, stored is None

    async def _address(self, doc: Doc, private: Doc, subscription: str) -> None:
        """The group's addresses (kept across updates while its IP settings stay)."""
        props = doc["properties"]
        ip = props.get("ipAddress")
        want = (ip or {}).get("type"), tuple(s["id"].lower() for s in props.get("subnetIds") or [])
        if private.get("address") != list(want):
            private.pop("ip", None)
            private.pop("inner", None)
            private.pop("subnet", None)
        private["address"] = list(want)
        taken = {d["properties"].get(PRIVATE, {}).get(k) for d in await self.all(None) if d["id"] != doc["id"]
                 for k in ("ip", "inner")}
        if want[1]:
            subnet_id = props["subnetIds"][0]["id"]
            cidr = await self._delegated(subnet_id, subscription, doc["name"])
            private["subnet"] = [_bridge(subnet_id), cidr]
            if "ip" not in private:
                net = ipaddress.ip_network(cidr)
                private["ip"] = _free(net, taken, skip=4)
            private["inner"] = private["ip"]
        else:
            private["subnet"] = [INNER_BRIDGE, str(INNER_RANGE)]
            private.setdefault("inner", _free(INNER_RANGE, taken, skip=2))
            if ip:
                private.setdefault("ip", _free(PUBLIC_RANGE, taken, skip=1))
        if ip:
            ip["ip"] = private["ip"]
            if ip.get("dnsNameLabel"):
                ip["fqdn"] = f"{ip['dnsNameLabel']}.{doc['location']}.azurecontainer.io"

    async def _delegated(self, subnet_id: str, subscription: str, name: str) -> str:
        """The delegated subnet's prefix, or ACI's refusal."""
        parts = subnet_id.strip("/").split("/")
        found = None, None
        if self.subnets is not None and len(parts) == 10 and parts[8].lower() == "subnets":
            found = await self.subnets(parts[1], parts[3], parts[7], parts[9])
        vnet, subnet = found
        if vnet is None or subnet is None:
            raise ARMError("SubnetNotFound", f"The subnet '{subnet_id}' of container group '{name}' could not be "
                           "found.", 400)
        delegations = [d.get("properties", {}).get("serviceName", "") for d in
                       subnet.get("properties", {}).get("delegations") or []]
        if "Microsoft.ContainerInstance/containerGroups" not in delegations:
            raise ARMError("SubnetNotDelegated", f"The subnet '{subnet_id}' of container group '{name}' must be "
                           "delegated to 'Microsoft.ContainerInstance/containerGroups'.", 400)
        props = subnet.get("properties", {})
        return props.get("addressPrefix") or (props.get("addressPrefixes") or [""])[0]

    async def begin_start(self, stored: documents.Stored) -> Doc:
        doc = stored.doc
        await self._save(doc["id"], lambda d: d["properties"].setdefault(PRIVATE, {}).pop("stopped", None))
        return await self.operations.begin("containerGroups.start", subscription=doc["id"].split("/")[2],
                                           location=doc["location"], resource_id=doc["id"],
                                           action=f"start {doc['name']}")

    async def stop_group(self, stored: documents.Stored) -> None:
        """ACI's stop: the containers are killed, the group is Stopped (and not billed) until it starts."""
        doc = stored.doc
        key = runtime_key(doc["id"])
        await self.runtime.stop(key)
        seconds = self.meter.stop(key)
        await self._save(doc["id"], lambda d: _stopped(d, seconds))

    async def restart(self, stored: documents.Stored) -> None:
        """ACI's restart: every container restarts in place (the group keeps its address)."""
        doc = stored.doc
        if (doc["properties"].get(PRIVATE) or {}).get("stopped"):
            raise ARMError("ContainerGroupStopped", f"The container group '{doc['name']}' is stopped; start it "
                           "instead.", 409)
        await self._run(doc)

    async def begin_delete(self, stored: documents.Stored) -> Doc:
        doc = stored.doc
        return await self.operations.begin("containerGroups.delete", subscription=doc["id"].split("/")[2],
                                           location=doc["location"], resource_id=doc["id"],
                                           action=f"delete {doc['name']}")

    # -- operation work -------------------------------------------------------------------------

    async def _run_work(self, op: Doc) -> None:
        rid = op[PRIVATE]["resourceId"]
        stored = await self.docs.get(rid)
        if stored is None:
            return
        try:
            await self._run(stored.doc)
        except ARMError:
            await self._save(rid, lambda d: d["properties"].update(provisioningState="Failed"))
            raise
        await self._save(rid, lambda d: d["properties"].update(provisioningState="Succeeded"))

    async def delete_group(self, subscription: str, group: str) -> None:
        """A resource group is being deleted: its container groups go with it."""
        for doc in await self.all(subscription, group):
            await self._delete(doc["id"])

    async def _delete_work(self, op: Doc) -> None:
        await self._delete(op[PRIVATE]["resourceId"])

    async def _delete(self, rid: str) -> None:
        key = runtime_key(rid)
        await self.runtime.stop(key, grace=0)
        self.meter.stop(key)
        shutil.rmtree(self.runtime.data_dir / "groups" / key, ignore_errors=True)
        await self.docs.delete(rid)

    async def _run(self, doc: Doc) -> runtime.Group:
        key = runtime_key(doc["id"])
        spec = self.spec(doc)
        try:
            g = await self.runtime.run(spec)
        except OSError as err:
            await self.runtime.stop(key, grace=0)
            raise ARMError("ContainerGroupDeploymentFailed", f"The container group '{doc['name']}' could not be "
                           f"started: {err.strerror or err}", 400) from None
        self.meter.start(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_WAIT
        while any(c.current["state"] == "Waiting" and c.restart_count == 0 for c in g.containers.values()):
            g.changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(g.changed.wait(), left)
        return g

    def spec(self, doc: Doc) -> runtime.GroupSpec:
        """How the runtime runs the group's document."""
        props = doc["properties"]
        key = runtime_key(doc["id"])
        private = props.get(PRIVATE) or {}
        vol_dir = self.runtime.data_dir / "groups" / key / "volumes"
        volumes = {v["name"]: _volume(vol_dir, v) for v in props.get("volumes") or []}
        containers = []
        for c in props["containers"]:
            cp = c["properties"]
            env = {"PATH": podenv.DEFAULT_PATH, "HOSTNAME": doc["name"]}
            for e in cp.get("environmentVariables") or []:
                env[e["name"]] = e.get("secureValue") if e.get("secureValue") is not None else (e.get("value") or "")
            image_ref = cp["image"]
            config = images.lookup(image_ref)
            argv = images.argv(config, list(cp.get("command") or []), [])
            if not argv:
                raise ARMError("ContainerCommandRequired",
                               f"The container '{c['name']}' in container group '{doc['name']}' needs a 'command': "
                               f"lks runs containers as processes of this host and does not know image '{image_ref}'.",
                               400)
            try:
                argv = images.host_argv(config, argv, image_ref=image_ref)
            except images.Unavailable as err:
                raise ARMError("InaccessibleImage", str(err), 400) from None
            env = images.environment(config, env)
            mounts = [(str(volumes[m["name"]]), m["mountPath"], bool(m.get("readOnly")))
                      for m in cp.get("volumeMounts") or [] if m.get("name") in volumes]
            if not self.runtime.namespaces:  # without a mount namespace the volumes are found by name
                env.update({f"LKS_VOLUME_{m['name'].upper().replace('-', '_')}": str(volumes[m["name"]])
                            for m in cp.get("volumeMounts") or [] if m.get("name") in volumes})
            containers.append(runtime.ContainerSpec(c["name"], argv, env, mounts))
        ip = props.get("ipAddress") or {}
        public = None
        if ip.get("type") == "Public" and private.get("ip"):
            public = (private["ip"], sorted({int(p["port"]) for p in ip.get("ports") or []
                                             if p.get("protocol", "TCP") == "TCP"}))
        subnet = tuple(private["subnet"]) if private.get("subnet") else None
        return runtime.GroupSpec(key=key, name=doc["name"], containers=containers,
                                 restart_policy=props.get("restartPolicy") or "Always", subnet=subnet,  # type: ignore[arg-type]
                                 ip=private.get("inner"), public=public)

    # -- what the API shows ------------------------------------------------------------------------

    def shown(self, doc: Doc) -> Doc:
        """The group with its live instance view and usage."""
        out = model.shown(doc)
        props = out["properties"]
        private = doc["properties"].get(PRIVATE) or {}
        key = runtime_key(doc["id"])
        g = self.runtime.get(key)
        for c in props["containers"]:
            cp = c["properties"]
            st = g.containers.get(c["name"]) if g else None
            if st is not None:
                view = {"restartCount": st.restart_count, "currentState": dict(st.current),
                        "events": [dict(e) for e in st.events]}
                if st.previous is not None:
                    view["previousState"] = dict(st.previous)
                cp["instanceView"] = view
            elif private.get("stopped"):
                cp["instanceView"] = {"restartCount": 0, "currentState": {"state": "Terminated", "exitCode": 137,
                                      "detailStatus": "Stopped"}, "events": []}
        state = "Stopped" if private.get("stopped") else (g.state if g else "Pending")
        props["instanceView"] = {"state": state, "events": []}
        cpu, mem = model.requests(doc)
        seconds = (private.get("billedSeconds") or 0.0) + self.meter.seconds(key)
        # lks's own: what ACI's per-second billing would count for this group (Azure shows it in Cost Management)
        props["billing"] = usage.bill(seconds, cpu, mem)
        return out

    async def logs(self, doc: Doc, container: str, *, tail: int | None, timestamps: bool) -> str:
        self._container(doc, container)
        path = self.runtime.log_path(runtime_key(doc["id"]), container)
        if path is None:
            return ""
        opts = LogOptions(container=container, tail_lines=tail, timestamps=timestamps)
        chunks = [c async for c in containerlogs.read(path, opts, now=self.runtime.now())]
        return b"".join(chunks).decode(errors="replace")

    def running(self, doc: Doc, container: str) -> runtime.Group:
        """The running group, for exec and attach (ACI's error when it is not)."""
        self._container(doc, container)
        g = self.runtime.get(runtime_key(doc["id"]))
        st = g.containers.get(container) if g else None
        if st is None or st.current["state"] != "Running":
            raise ARMError("ContainerGroupNotRunning" if g is None else "ContainerNotRunning",
                           f"The container '{container}' in container group '{doc['name']}' is not running.", 409
                           if g is None else 400)
        return g

    def _container(self, doc: Doc, container: str) -> None:
        if not any(c["name"] == container for c in doc["properties"]["containers"]):
            raise ARMError("ContainerNotFound", f"The container '{container}' could not be found in container "
                           f"group '{doc['name']}'.", 404)

    async def _save(self, rid: str, change: Callable[[Doc], Any]) -> None:
        for _ in range(16):
            stored = await self.docs.get(rid)
            if stored is None:
                return
            change(stored.doc)
            try:
                await self.docs.update(stored.doc, stored.revision)
                return
            except store.RevisionConflict:
                continue


def exec_argv(command: str) -> list[str]:
    """The command of an exec request: ACI runs one program; lks also splits its arguments."""
    return shlex.split(command) if command.strip() else ["/bin/sh"]


def _stopped(doc: Doc, seconds: float) -> None:
    private = doc["properties"].setdefault(PRIVATE, {})
    private["stopped"] = True
    private["billedSeconds"] = (private.get("billedSeconds") or 0.0) + seconds


def _bridge(subnet_id: str) -> str:
    return "aci-" + hashlib.sha256(subnet_id.lower().encode()).hexdigest()[:8]


def _free(net: ipaddress.IPv4Network | ipaddress.IPv6Network, taken: set[Any], *, skip: int) -> str:
    for i, address in enumerate(net.hosts()):
        if i + 1 < skip:
            continue
        if str(address) not in taken and address != net.broadcast_address:
            return str(address)
    raise ARMError("SubnetIPAddressesExhausted", f"No free IP address is left in '{net}'.", 409)


def _volume(base: Path, v: Doc) -> Path:
    """The group's volume on the host: an empty directory, or a secret's files."""
    path = base / v["name"]
    path.mkdir(parents=True, exist_ok=True)
    for name, value in (v.get("secret") or {}).items():
        target = path / name
        target.write_bytes(base64.b64decode(value or ""))
        os.chmod(target, 0o644)
    return path
