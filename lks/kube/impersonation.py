"""Acting as someone else (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-<key>` headers;
`kubectl --as`, `--as-group`), as upstream's impersonation filter does it: each part of the
requested identity must be allowed with the `impersonate` verb (users, groups, uids,
serviceaccounts, userextras/<key>), and the request then runs as the impersonated user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from lks.kube import authz, errors
from lks.kube.authn import ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED, User, split_service_account

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

    from lks.kube.cluster import Cluster

USER, GROUP, UID, EXTRA = "Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-"
_AUTHENTICATION = "authentication.k8s.io"


def requested(headers: CIMultiDictProxy[str]) -> bool:
    return any(k.lower().startswith("impersonate-") for k in headers)


async def impersonate(cluster: Cluster, user: User, headers: CIMultiDictProxy[str]) -> User:
    """The user `user` acts as, every part of it authorized; raises 403 (or 500 for groups or
    extras without a user, as upstream) otherwise."""
    name = headers.get(USER, "")
    groups = tuple(headers.getall(GROUP, ()))
    uid = headers.get(UID, "")
    extra: dict[str, tuple[str, ...]] = {}
    for key in {k for k in headers if k.lower().startswith(EXTRA.lower())}:
        extra[unquote(key[len(EXTRA):].lower())] = tuple(headers.getall(key))
    if not name:
        if groups or extra or uid:
            raise errors.internal("requested impersonation of groups, extra or uid without impersonating a user")
        return user
    service_account = split_service_account(name)
    checks: list[authz.Attributes] = []
    if service_account is not None:
        ns, sa = service_account
        checks.append(authz.Attributes(user, "impersonate", True, ns, "", "v1", "serviceaccounts", "", sa))
        if not groups:
            groups = ("system:serviceaccounts", f"system:serviceaccounts:{ns}")
    else:
        checks.append(authz.Attributes(user, "impersonate", True, "", "", "v1", "users", "", name))
    checks += [authz.Attributes(user, "impersonate", True, "", "", "v1", "groups", "", g) for g in groups]
    if uid:
        checks.append(authz.Attributes(user, "impersonate", True, "", _AUTHENTICATION, "v1", "uids", "", uid))
    for key, values in extra.items():
        checks += [authz.Attributes(user, "impersonate", True, "", _AUTHENTICATION, "v1", "userextras", key, v)
                   for v in values]
    for attrs in checks:
        decision, reason = await cluster.authorizer.authorize(attrs)
        if decision != authz.ALLOW:
            raise authz.forbidden(attrs, reason)
    if name != ANONYMOUS:
        if AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups = (*groups, AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups = (*groups, UNAUTHENTICATED)
    return User(name, groups, uid, extra)

