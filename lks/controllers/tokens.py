"""The token controller: legacy service-account token Secrets (upstream's
`pkg/controller/serviceaccount/tokens_controller.go`).

A Secret of type `kubernetes.io/service-account-token` annotated with
`kubernetes.io/service-account.name` gets `token` (a non-expiring JWT of the account signed by
the cluster's issuer, `lks.kube.serviceaccounts.issuer`), `ca.crt` (the CA pods verify the API
server with) and `namespace` filled in, and the account's uid in the
`kubernetes.io/service-account.uid` annotation. A Secret whose account is missing (or has
another uid) is deleted, and so are an account's token Secrets when the account goes. The token
authenticates as long as the Secret holds it (`lks.kube.serviceaccounts.authenticator`).
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from lks.controllers.controller import Controller
from lks.controllers.rootcacert import root_ca
from lks.kube import deletion, errors
from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, Secret name)
WRITE = WriteOptions(field_validation="Ignore", trusted=True, field_manager="kube-controller-manager")

TOKEN_TYPE = "kubernetes.io/service-account-token"
NAME_ANNOTATION = "kubernetes.io/service-account.name"
UID_ANNOTATION = "kubernetes.io/service-account.uid"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class TokensController(Controller[Key]):
    def __init__(self, cluster: Cluster):
        super().__init__(cluster, name="serviceaccount-token")
        self.secrets = cluster.registry("", "v1", "secrets")
        self.accounts = cluster.registry("", "v1", "serviceaccounts")
        self.secret_informer = self.watch(self.secrets, self._on_secret)
        self.account_informer = self.watch(self.accounts, self._on_account)

    def _on_secret(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        if kind != "DELETED" and obj.get("type") == TOKEN_TYPE:
            self.queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def _on_account(self, kind: str, obj: Obj, _prev: Obj | None) -> None:
        """An account that goes (or changes) takes its token Secrets with it: look at them."""
        meta = obj["metadata"]
        if kind == "ADDED":
            return
        for secret in self.secret_informer.list():
            smeta = secret["metadata"]
            if (secret.get("type") == TOKEN_TYPE and smeta.get("namespace") == meta["namespace"]
                    and (smeta.get("annotations") or {}).get(NAME_ANNOTATION) == meta["name"]):
                self.queue.add((smeta["namespace"], smeta["name"]))

    async def sync(self, key: Key) -> None:
        namespace, name = key
        secret = self.secret_informer.get(namespace, name)
        if secret is None or secret.get("type") != TOKEN_TYPE or "deletionTimestamp" in secret["metadata"]:
            return
        annotations = secret["metadata"].get("annotations") or {}
        account_name = annotations.get(NAME_ANNOTATION) or ""
        account = self.account_informer.get(namespace, account_name) if account_name else None
        if account is None and account_name:  # our cache may be behind a just-made account
            account = await self.accounts.get_or_none(namespace, account_name)
        wanted_uid = annotations.get(UID_ANNOTATION)
        if account is None or "deletionTimestamp" in account["metadata"] or \
                (wanted_uid and wanted_uid != account["metadata"].get("uid")):
            await self._delete(secret)
            return
        data = secret.get("data") or {}
        if data.get("token") and data.get("ca.crt") and data.get("namespace") and wanted_uid:
            return
        updated = copy.deepcopy(secret)  # the cache's copy is shared
        new = updated.setdefault("data", {})
        if not data.get("token"):
            new["token"] = _b64(self.cluster.token_issuer.legacy(account, name))
        if not data.get("ca.crt"):
            new["ca.crt"] = _b64(root_ca(self.cluster))
        if not data.get("namespace"):
            new["namespace"] = _b64(namespace)
        updated["metadata"]["annotations"] = {**annotations, NAME_ANNOTATION: account_name,
                                              UID_ANNOTATION: account["metadata"]["uid"]}
        try:
            await self.secrets.update(namespace, name, updated, WRITE)
        except errors.APIError as err:
            if err.code not in (404, 409):  # 409: changed meanwhile, its event brings it back; 404: gone
                raise

    async def _delete(self, secret: Obj) -> None:
        meta = secret["metadata"]
        try:
            await self.secrets.delete(meta["namespace"], meta["name"],
                                      deletion.DeleteOptions(preconditions={"uid": meta["uid"]}))
        except errors.APIError as err:
            if err.code not in (404, 409):
                raise
