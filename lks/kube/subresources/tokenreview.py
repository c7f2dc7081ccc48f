"""`TokenReview` (authentication.k8s.io/v1): whether a bearer token authenticates to this API
server, and as whom, as webhook token authenticators and proxies ask (upstream's
`pkg/registry/authentication/tokenreview`). Nothing is stored.

The token goes through the cluster's token authenticators as a request bearing it would, with
the review's audiences (default: the API server's). Service-account tokens answer for their
audiences themselves (`lks.kube.serviceaccounts.authenticator`); the static tokens know no
audience and stand only for the API server's own (upstream's audience-agnostic wrapper). A
token that does not authenticate gets upstream's error words (`invalid bearer token`, with the
reason in brackets when the authenticator gave one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.kube import errors, serviceaccounts
from lks.kube.subresources import virtual

if TYPE_CHECKING:
    from lks.kube.authn import User
    from lks.kube.cluster import Cluster
    from lks.kube.registry import WriteOptions

Obj = dict[str, Any]

INVALID = "invalid bearer token"


@virtual("authentication.k8s.io", "tokenreviews")
async def review(cluster: Cluster, _namespace: str | None, body: Any, _opts: WriteOptions) -> tuple[int, Obj]:
    if not isinstance(body, dict):
        raise errors.bad_request("the body of a TokenReview must be an object")
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    token = spec.get("token")
    if not token or not isinstance(token, str):
        raise errors.bad_request("token is required for TokenReview in authentication")
    wanted = spec.get("audiences") or []
    if not isinstance(wanted, list) or not all(isinstance(a, str) for a in wanted):
        raise errors.bad_request("spec.audiences must be a list of strings")
    user, audiences, error = await authenticate(cluster, token, wanted)
    status: Obj = {}
    if user is not None:
        status["authenticated"] = True
    status["user"] = user.info() if user is not None else {}
    if audiences:
        status["audiences"] = audiences
    if error:
        status["error"] = error
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k in ("name", "labels", "annotations")}
    return 201, {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                 "metadata": {**meta, "creationTimestamp": None}, "spec": spec, "status": status}


async def authenticate(cluster: Cluster, token: str, wanted: list[str]) -> tuple[User | None, list[str], str]:
    """(user or None, the audiences it is good for, the error) for `token` asked with `wanted`."""
    api = cluster.token_issuer.audiences
    auds = wanted or api
    sa = next((a for a in cluster.token_authenticators if isinstance(a, serviceaccounts.Authenticator)), None)
    if sa is not None:
        try:
            user = await sa.authenticate(token, auds)
        except serviceaccounts.Invalid as err:
            return None, [], f"[{INVALID}, {err}]"
        if user is not None:
            token_auds = sa.audiences_of(token)
            return user, [a for a in auds if a in token_auds], ""
    if not set(auds) & set(api):  # the other authenticators speak for the API server's audiences only
        return None, [], INVALID
    user = await cluster.authenticate(bearer=token, peer_cert_der=None)
    if user is None:
        return None, [], INVALID
    return user, [a for a in auds if a in api], ""
