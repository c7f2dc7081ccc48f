"""`POST serviceaccounts/<name>/token`: a TokenRequest (authentication.k8s.io/v1) answered with
a signed token of the service account (upstream's `TokenREST` in
`pkg/registry/core/serviceaccount/storage/token.go`), as `kubectl create token` and kubelet
ask for it. Nothing is stored.

The request's audiences default to the API server's, its lifetime to an hour (at least ten
minutes, at most 2^32 seconds); `boundObjectRef` binds the token to a Pod (with the Node it
runs on), a Secret or a Node that must exist with the given uid, and the token stops working
when that object goes (`lks.kube.serviceaccounts.authenticator`). kubelet's 3607-second pod
tokens are signed for a year and warn after 3607 seconds, as upstream extends them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.clock import rfc3339
from lks.kube import authn, errors
from lks.kube.serviceaccounts.issuer import EXTENDED_SECONDS, WARN_ONLY_SECONDS
from lks.kube.subresources import handler

if TYPE_CHECKING:
    from lks.kube.authn import User
    from lks.kube.cluster import Cluster
    from lks.kube.registry import Registry, WriteOptions

Obj = dict[str, Any]

KIND, GROUP = "TokenRequest", "authentication.k8s.io"
API_VERSION = f"{GROUP}/v1"
DEFAULT_SECONDS = 60 * 60
MIN_SECONDS = 10 * 60
MAX_SECONDS = 1 << 32


@handler("", "serviceaccounts", "token")
async def create(reg: Registry, namespace: str | None, name: str, verb: str, body: Any,
                 opts: WriteOptions) -> tuple[int, Obj]:
    if verb != "create":
        raise errors.method_not_allowed()
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be a TokenRequest object")
    if body.get("kind") not in (None, KIND) or body.get("apiVersion") not in (None, API_VERSION):
        raise errors.bad_request(f"not a TokenRequest object: {body.get('apiVersion')}, Kind={body.get('kind')}")
    return 201, await request_token(reg.cluster, namespace or "", name, body, user=opts.user)


async def request_token(cluster: Cluster, namespace: str, name: str, body: Obj, *, user: User | None = None) -> Obj:
    """The TokenRequest `body` for service account `namespace/name`, answered (its status
    holds the token). `user` made the request (None: an in-process caller, such as the node
    agents, which come here directly and are authorized here as the identity they act as);
    a node's request passes NodeRestriction's check."""
    await cluster.registry("", "v1", "serviceaccounts").authorize("create", namespace, name, "token", user)
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    if meta.get("name") and meta["name"] != name:
        raise errors.invalid(KIND, GROUP, name, [errors.Cause.invalid(
            "metadata.name", meta["name"], "must match the service account name if specified")])
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise errors.invalid(KIND, GROUP, name, [errors.Cause.invalid(
            "metadata.namespace", meta["namespace"], "must match the service account namespace if specified")])
    account = await cluster.registry("", "v1", "serviceaccounts").get(namespace, name)
    issuer = cluster.token_issuer
    audiences = spec.get("audiences") or issuer.audiences
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        seconds = DEFAULT_SECONDS
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences) \
            or not isinstance(seconds, int) or isinstance(seconds, bool):
        raise errors.bad_request("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: "
                                 "spec.audiences must be strings and spec.expirationSeconds an integer")
    now = cluster.clock.now()
    causes = []
    if seconds < MIN_SECONDS:
        causes.append(errors.Cause.invalid("spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes"))
    if seconds > MAX_SECONDS:
        causes.append(errors.Cause.invalid("spec.expirationSeconds", seconds, "may not specify a duration larger than 2^32 seconds"))
    if causes:
        raise errors.invalid(KIND, GROUP, "", causes)
    # imported here: importing an admission module registers its plugin, and plugins of one
    # ORDER run in the order `admission.for_cluster` imports them
    from lks.kube.admission import noderestriction

    await noderestriction.check_token_request(cluster, user or authn.ACTING.get(), namespace, name, spec)
    bound = await _bound_objects(cluster, namespace, name, spec.get("boundObjectRef"))
    exp, warn_after = seconds, 0
    if bound.get("pod") is not None and seconds == WARN_ONLY_SECONDS and set(audiences) <= set(issuer.audiences):
        exp, warn_after = EXTENDED_SECONDS, seconds
    token = issuer.issue(account, audiences=audiences, seconds=exp, warn_after=warn_after, **bound)
    out_spec: Obj = {"audiences": audiences, "expirationSeconds": seconds}
    if spec.get("boundObjectRef"):
        out_spec["boundObjectRef"] = spec["boundObjectRef"]
    return {"kind": KIND, "apiVersion": API_VERSION,
            "metadata": {"name": account["metadata"]["name"], "namespace": namespace, "creationTimestamp": rfc3339(now)},
            "spec": out_spec,
            "status": {"token": token, "expirationTimestamp": rfc3339(now + seconds)}}


async def _bound_objects(cluster: Cluster, namespace: str, name: str, ref: Any) -> dict[str, Obj | None]:
    """The objects a token is bound to (pod, secret, node), checked as upstream checks them."""
    if not ref:
        return {}
    if not isinstance(ref, dict):
        raise errors.bad_request("spec.boundObjectRef must be an object")
    api_version, kind = ref.get("apiVersion") or "", ref.get("kind") or ""
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    ref_name = ref.get("name") or ""
    out: dict[str, Obj | None] = {}
    if group == "" and kind == "Pod":
        pod = await cluster.registry("", "v1", "pods").get(namespace, ref_name)
        if (pod.get("spec") or {}).get("serviceAccountName", "") != name:
            raise errors.bad_request(f'cannot bind token for serviceaccount "{name}" to pod running with different '
                                     "serviceaccount name.")
        out["pod"] = obj = pod
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            out["node"] = await cluster.registry("", "v1", "nodes").get_or_none(None, node_name)
    elif group == "" and kind == "Node":
        out["node"] = obj = await cluster.registry("", "v1", "nodes").get(None, ref_name)
    elif group == "" and kind == "Secret":
        out["secret"] = obj = await cluster.registry("", "v1", "secrets").get(namespace, ref_name)
    else:
        gvk = f"{group}/{api_version.rpartition('/')[2]}, Kind={kind}" if group else f"/{api_version}, Kind={kind}"
        raise errors.bad_request(f'cannot bind token for serviceaccount "{name}" to object of type {gvk}')
    if ref.get("uid") and ref["uid"] != obj["metadata"].get("uid"):
        raise errors.conflict(kind, group, ref_name, f"the UID in the bound object reference ({ref['uid']}) does not "
                              "match the UID in record. The object might have been deleted and then recreated")
    return out
