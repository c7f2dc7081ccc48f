"""kubelet's token manager for the Process runtime (`lks.nodes.process`): the token of a pod's
projected `serviceAccountToken` source is requested through TokenRequest
(`lks.kube.subresources.tokenrequest`), bound to the pod, for the source's audience (default:
the API server's) and lifetime (default one hour, at least ten minutes), and written again
with a fresh token once 80 % of its life has passed, as kubelet refreshes it. The API server
knows these tokens itself, so a client inside the pod (`load_incluster_config()`) is the pod's
service account, and RBAC applies to it.

Each request is the kubelet's of the pod's node (`system:node:<name>`, as `lks.nodes.agent`'s
writes are), so the Node authorizer decides it: a node may ask tokens only for the service
accounts of pods bound to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lks.kube import errors
from lks.kube.authn import acting_as
from lks.kube.rbac.nodegraph import node_user
from lks.kube.subresources.tokenrequest import request_token

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_SECONDS = 60 * 60  # upstream's defaulting of ServiceAccountTokenProjection
REFRESH_AT = 0.8  # of a token's life
RETRY_SECONDS = 10.0


class PodTokens:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self._refreshers: dict[str, asyncio.Task] = {}  # by pod uid

    async def token(self, pod: Obj, source: Obj) -> str:
        """A new token for `pod`'s service account as the projected `source` asks."""
        meta = pod["metadata"]
        spec: Obj = {"expirationSeconds": int(source.get("expirationSeconds") or DEFAULT_SECONDS),
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}}
        if source.get("audience"):
            spec["audiences"] = [source["audience"]]
        with acting_as(node_user(pod["spec"].get("nodeName") or "")):
            out = await request_token(self.cluster, meta["namespace"],
                                      pod["spec"].get("serviceAccountName") or "default", {"spec": spec})
        return out["status"]["token"]

    def keep_fresh(self, pod: Obj, volumes: dict[str, Path]) -> None:
        """Refresh the token files of `pod`'s projected volumes (written under `volumes`) until `forget`."""
        files = []
        for vol in pod["spec"].get("volumes") or ():
            path = volumes.get(vol.get("name", ""))
            for source in (vol.get("projected") or {}).get("sources") or ():
                sat = source.get("serviceAccountToken")
                if sat is not None and path is not None:
                    files.append((path / sat.get("path", "token"), sat))
        uid = pod["metadata"]["uid"]
        if files and uid not in self._refreshers:
            self._refreshers[uid] = asyncio.create_task(self._refresh(pod, files), name=f"tokens {uid}")

    def forget(self, uid: str) -> None:
        task = self._refreshers.pop(uid, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._refreshers.values())
        self._refreshers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _refresh(self, pod: Obj, files: list[tuple[Path, Obj]]) -> None:
        life = min(int(sat.get("expirationSeconds") or DEFAULT_SECONDS) for _, sat in files)
        wait = life * REFRESH_AT
        while True:
            await self.cluster.clock.sleep(wait)
            try:
                for path, sat in files:
                    _replace(path, (await self.token(pod, sat)).encode())
                wait = life * REFRESH_AT
            except errors.APIError as err:  # the pod or its account is going: try again a little later
                log.debug("refreshing the token of pod %s failed: %s", pod["metadata"]["name"], err.status().get("message"))
                wait = RETRY_SECONDS
            except OSError:  # the pod's directory went
                return
            except Exception:  # the control plane restarting (an upgrade): its successor is asked next time
                log.debug("refreshing the token of pod %s failed", pod["metadata"]["name"], exc_info=True)
                wait = RETRY_SECONDS


def _replace(path: Path, data: bytes) -> None:
    """Write the file anew in one step (a reader never sees half a token), keeping its mode."""
    mode = path.stat().st_mode & 0o777
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
