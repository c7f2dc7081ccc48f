"""The root CA publisher: a `kube-root-ca.crt` ConfigMap in every namespace holding, under
`ca.crt`, the CA that signs the API server's serving certificate (upstream's
`pkg/controller/certificates/rootcacertpublisher`).

Pods mount it through their projected service account volume to verify the API server, so it
is made again when deleted and put back when someone changes it. The PEM is the one kubeconfigs
carry as `certificate-authority-data` (`cluster.serving_ca_pem`). The `default` ServiceAccount
beside it comes from `lks.controllers.serviceaccount`.
"""

from __future__ import annotations

import copy
from typing import Any

from lks.controllers.controller import Controller
from lks.controllers.serviceaccount import namespace_active, namespace_gone
from lks.kube import errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

Obj = dict[str, Any]
WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="kube-controller-manager")

NAME = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
               "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
               "guaranteed across distributions of Kubernetes clusters.")


def root_ca(cluster: Cluster) -> str:
    pem = getattr(cluster, "serving_ca_pem", None) or cluster.ca.cert_pem
    return pem.decode() if isinstance(pem, bytes) else pem


class RootCACertPublisher(Controller[str]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="root-ca-cert-publisher")
        self.configmaps = cluster.registry("", "v1", "configmaps")
        self.informer = self.watch(self.configmaps, self._on_configmap)
        self.namespaces = self.watch(cluster.registry("", "v1", "namespaces"), self._on_namespace)

    def _on_namespace(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        if kind != "DELETED":
            self.queue.add(obj["metadata"]["name"])

    def _on_configmap(self, _kind: str, obj: Obj, _prev: Obj | None) -> None:
        if obj["metadata"]["name"] == NAME:
            self.queue.add(obj["metadata"]["namespace"])

    async def sync(self, namespace: str) -> None:
        if not namespace_active(self.namespaces.get(None, namespace)):
            return
        data = {"ca.crt": root_ca(self.cluster)}
        current = self.informer.get(namespace, NAME)
        if current is None:
            try:
                await self.configmaps.create(namespace, {
                    "metadata": {"name": NAME, "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                    "data": data,
                }, WRITE)
            except errors.APIError as err:
                # 409: our cache is behind; its ADDED event brings the namespace back
                if err.code != 409 and not namespace_gone(err):
                    raise
            return
        annotations = current["metadata"].get("annotations") or {}
        if current.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
            return
        updated = copy.deepcopy(current)  # the cache's copy is shared
        updated["data"] = data
        updated["metadata"]["annotations"] = {**annotations, DESCRIPTION_ANNOTATION: DESCRIPTION}
        try:
            await self.configmaps.update(namespace, NAME, updated, WRITE)
        except errors.APIError as err:
            if err.code != 404:  # deleted meanwhile: its DELETED event brings the namespace back
                raise
