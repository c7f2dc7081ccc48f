"""lks as the cluster's front proxy (kube-apiserver's `--requestheader-*` and
`--proxy-client-cert-file`): a front-proxy CA of the cluster's own (kept in its store, outside
the API's `/registry/` keys, created on first start), the `front-proxy-client` certificate it
signs for the requests `proxy` sends, and the `kube-system/extension-apiserver-authentication`
ConfigMap that tells extension API servers to trust that certificate's X-Remote-* headers (and
the cluster CA for client certificates), as upstream's ClusterAuthenticationTrustController
publishes it.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from typing import TYPE_CHECKING, Any

import orjson

from lks import pki, store

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster

KEY = "/lks/aggregator/front-proxy-ca"
CLIENT = "front-proxy-client"
CONFIGMAP = "extension-apiserver-authentication"


class FrontProxy:
    def __init__(self, ca: pki.KeyPair):
        self.ca = ca
        self.client = pki.create_client_cert(ca, CLIENT)

    def present(self, ctx: ssl.SSLContext) -> None:
        """Make `ctx` present the front-proxy client certificate (ssl loads it from files)."""
        fd, path = tempfile.mkstemp(prefix="lks-front-proxy-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.client.cert_pem + self.client.key_pem)
            ctx.load_cert_chain(path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)


async def load(backend: store.Backend) -> FrontProxy:
    """The cluster's front proxy, its CA made and kept on first use."""
    for _ in range(2):
        kv = await backend.get(KEY)
        if kv is not None:
            doc = orjson.loads(kv.value)
            return FrontProxy(pki.KeyPair(doc["cert"].encode(), doc["key"].encode()))
        ca = pki.create_ca("front-proxy-ca")
        try:
            await backend.create(KEY, orjson.dumps({"cert": ca.cert_pem.decode(), "key": ca.key_pem.decode()}))
            return FrontProxy(ca)
        except store.KeyExists:
            continue  # another start made it first: read theirs
    raise RuntimeError("front-proxy CA could not be stored")


def configmap(cluster: Cluster, front: FrontProxy) -> dict[str, Any]:
    """`kube-system/extension-apiserver-authentication` as kube-apiserver writes it."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP, "namespace": "kube-system"},
            "data": {
                "client-ca-file": cluster.ca.cert_pem.decode(),
                "requestheader-allowed-names": orjson.dumps([CLIENT]).decode(),
                "requestheader-client-ca-file": front.ca.cert_pem.decode(),
                "requestheader-extra-headers-prefix": orjson.dumps(["X-Remote-Extra-"]).decode(),
                "requestheader-group-headers": orjson.dumps(["X-Remote-Group"]).decode(),
                "requestheader-uid-headers": orjson.dumps(["X-Remote-Uid"]).decode(),
                "requestheader-username-headers": orjson.dumps(["X-Remote-User"]).decode(),
            }}
