"""ServiceAccount admission (upstream's `plugin/pkg/admission/serviceaccount`): a new pod runs
as `default` unless it names a service account (`serviceAccountName`, and its deprecated alias
`serviceAccount`), that account must exist, and unless the pod or the account sets
`automountServiceAccountToken: false` every container and init container mounts the
`kube-api-access-<5 random chars>` projected volume (a 3607-second token, the cluster's
`kube-root-ca.crt`, the namespace) read-only at /var/run/secrets/kubernetes.io/serviceaccount,
as upstream shapes it. The account's `imagePullSecrets` become the pod's when it has none.

The `default` account is made by `lks.controllers.serviceaccount` as its namespace appears: a
pod created a moment after its namespace may look before the controller has made it, so that
one is looked for a few times, as upstream does. Writes of the service itself (controllers)
that find no account go through at once without a token volume rather than fail; upstream's
controllers retry until the account exists, which in-process test clusters without the
controller never make. Mirror pods get nothing and may not name an account.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from lks.kube import admission
from lks.kube.admission.resourcequota import forbidden

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]

DEFAULT = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
MIRROR = "kubernetes.io/config.mirror"
TOKEN_SECONDS = 60 * 60 + 7  # upstream's WarnOnlyBoundTokenExpirationSeconds
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand
_DEFAULT_ATTEMPTS = 10


def token_volume(name: str) -> Obj:
    """The projected volume upstream's TokenVolumeSource describes."""
    return {"name": name, "projected": {"sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_SECONDS, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ], "defaultMode": 420}}


@admission.plugin
class ServiceAccount:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster

    async def admit(self, operation: str, reg: Registry, obj: Obj, old: Obj | None, opts: WriteOptions) -> None:
        if operation != "CREATE" or reg.rt.group or reg.rt.resource != "pods" or opts.subresource:
            return
        if MIRROR in (obj["metadata"].get("annotations") or {}):
            return
        spec = obj.setdefault("spec", {})
        name = spec.get("serviceAccountName") or DEFAULT
        spec["serviceAccountName"] = spec["serviceAccount"] = name
        account = await self._account(obj["metadata"].get("namespace") or "", name, wait=opts.user is not None)
        if account is None:
            if opts.user is None:
                return
            raise forbidden(reg, obj, f"error looking up service account {obj['metadata'].get('namespace')}/{name}: "
                                      f'serviceaccount "{name}" not found')
        if _automount(account, spec):
            mount_token(spec)
        if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in account["imagePullSecrets"]]

    async def validate(self, operation: str, reg: Registry, obj: Obj | None, old: Obj | None,
                       opts: WriteOptions) -> None:
        if operation != "CREATE" or obj is None or reg.rt.group or reg.rt.resource != "pods" or opts.subresource:
            return
        if MIRROR in (obj["metadata"].get("annotations") or {}) and (obj.get("spec") or {}).get("serviceAccountName"):
            raise forbidden(reg, obj, "a mirror pod may not reference service accounts")

    async def _account(self, namespace: str, name: str, *, wait: bool) -> Obj | None:
        reg = self.cluster.registry("", "v1", "serviceaccounts")
        attempts = _DEFAULT_ATTEMPTS if name == DEFAULT and wait else 1
        for attempt in range(attempts):
            found = (await reg.cache()).objects.get(reg.key(namespace, name)) or await reg.get_or_none(namespace, name)
            if found is not None or attempt == attempts - 1:
                return found
            await asyncio.sleep(0.1 + random.random() * 0.1)  # the controller makes it in a moment
        return None


def _automount(account: Obj, spec: Obj) -> bool:
    """The pod's preference wins, then the account's; true by default."""
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if account.get("automountServiceAccountToken") is not None:
        return bool(account["automountServiceAccountToken"])
    return True


def mount_token(spec: Obj) -> None:
    """Every (init) container mounts the token volume at MOUNT_PATH unless it mounts something
    there already; the volume is added when a container needs it and the pod has none."""
    volumes = spec.get("volumes") or []
    existing = next((v["name"] for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    name = existing or VOLUME_PREFIX + "".join(random.choices(_ALPHANUMS, k=5))
    needed = False
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or ():
            mounts = container.get("volumeMounts") or []
            if any(m.get("mountPath") == MOUNT_PATH for m in mounts):
                continue
            container["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": MOUNT_PATH}]
            needed = True
    if needed and existing is None:
        spec["volumes"] = [*volumes, token_volume(name)]
