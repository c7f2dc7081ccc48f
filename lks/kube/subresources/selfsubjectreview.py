"""`SelfSubjectReview` (authentication.k8s.io): who the API server takes the caller for, as
`kubectl auth whoami` asks. Nothing is stored; the answer is the authenticated user of the
request, in the review's status (upstream's `selfsubjectreview` REST)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lks.kube import errors
from lks.kube.subresources import virtual

if TYPE_CHECKING:
    from lks.kube.cluster import Cluster
    from lks.kube.registry import WriteOptions

Obj = dict[str, Any]


@virtual("authentication.k8s.io", "selfsubjectreviews")
async def review(_cluster: Cluster, _namespace: str | None, body: Any, opts: WriteOptions) -> tuple[int, Obj]:
    if body is not None and not isinstance(body, dict):
        raise errors.bad_request("the body of a SelfSubjectReview must be an object")
    user = opts.user
    if user is None:  # only the service itself writes without a user, and it never asks
        raise errors.internal("no user information found for the request")
    return 201, {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                 "metadata": {"creationTimestamp": None}, "status": {"userInfo": user.info()}}
