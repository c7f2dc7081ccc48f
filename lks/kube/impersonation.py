"""Acting as someone else (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-<key>` headers;
`kubectl --as`, `--as-group`, `--as-uid`), as upstream's impersonation filter
(`apiserver/pkg/endpoints/filters/impersonation.go`) does it: each part of the requested
identity must be allowed with the `impersonate` verb, in the filter's order (the user or service
account, each group, each extra value as `userextras/<key>`, the uid), and the request then runs
as the impersonated user. The HTTP layer (`lks.kube.http.app`) authorizes the request itself
as that user next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from aiohttp import web

from lks.kube import authn, authz, structural, validation

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy

    from lks.kube.cluster import Cluster

USER, GROUP, UID, EXTRA = "Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-"
_AUTHENTICATION = "authentication.k8s.io"


def requested(headers: CIMultiDictProxy[str]) -> bool:
    return any(k.lower().startswith("impersonate-") for k in headers)


async def impersonate(cluster: Cluster, user: authn.User, headers: CIMultiDictProxy[str],
                      uri: str = "") -> authn.User:
    """The user `user` acts as, every part of it authorized; raises 403 naming the first part
    not allowed, or for groups, extras or a uid without a user the plain-text 500 upstream's
    `responsewriters.InternalError` writes (naming the request's `uri`)."""
    name = headers.get(USER, "")
    groups_asked = tuple(headers.getall(GROUP, ()))
    uid = headers.get(UID, "")
    extra: dict[str, tuple[str, ...]] = {}
    # one key per header name whatever its case (Go canonicalizes them), lower-cased, then %-decoded
    for header in dict.fromkeys(k.lower() for k in headers if k.lower().startswith(EXTRA.lower())):
        key = unquote(header[len(EXTRA):])
        extra[key] = extra.get(key, ()) + tuple(headers.getall(header))
    if not name:
        if groups_asked or extra or uid:
            raise _internal_error(uri, f"requested {_references(groups_asked, extra, uid)} without impersonating a user")
        return user
    checks: list[authz.Attributes] = []
    groups: tuple[str, ...] = ()
    service_account = _service_account(name)
    if service_account is not None:
        ns, sa = service_account
        checks.append(authz.Attributes(user, "impersonate", True, ns, "", "", "serviceaccounts", "", sa))
        if not groups_asked:  # a service account's groups are known: a fixed mapping
            groups = (authn.SERVICE_ACCOUNTS, f"{authn.SERVICE_ACCOUNTS}:{ns}")
    else:
        checks.append(authz.Attributes(user, "impersonate", True, "", "", "", "users", "", name))
    checks += [authz.Attributes(user, "impersonate", True, "", "", "", "groups", "", g) for g in groups_asked]
    groups += groups_asked
    for key, values in extra.items():
        checks += [authz.Attributes(user, "impersonate", True, "", _AUTHENTICATION, "v1", "userextras", key, v)
                   for v in values]
    if uid:
        checks.append(authz.Attributes(user, "impersonate", True, "", _AUTHENTICATION, "v1", "uids", "", uid))
    for attrs in checks:
        decision, reason = await cluster.authorizer.authorize(attrs)
        if decision != authz.ALLOW:
            raise authz.forbidden(attrs, reason)
    if name != authn.ANONYMOUS:
        if authn.AUTHENTICATED not in groups and authn.UNAUTHENTICATED not in groups:
            groups = (*groups, authn.AUTHENTICATED)
    elif authn.UNAUTHENTICATED not in groups:
        groups = (*groups, authn.UNAUTHENTICATED)
    return authn.User(name, groups, uid, extra)


def _service_account(name: str) -> tuple[str, str] | None:
    """(namespace, name) when `name` is a service account's username, as upstream's
    `serviceaccount.SplitUsername` decides: both parts must be valid names, else it is a user."""
    parts = authn.split_service_account(name)
    if parts is None or validation.dns_label(parts[0]) or validation.dns_subdomain(parts[1]):
        return None
    return parts


def _internal_error(uri: str, message: str) -> web.HTTPInternalServerError:
    """Go's `http.Error` of `Internal Server Error: %q: %v`, HTML-escaped as upstream's sanitizer does."""
    text = f"Internal Server Error: {structural.go_quote(uri)}: {message}"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return web.HTTPInternalServerError(text=text + "\n", headers={"X-Content-Type-Options": "nosniff"})


def _references(groups: tuple[str, ...], extra: dict[str, tuple[str, ...]], uid: str) -> str:
    """The impersonation requests as upstream's error prints them: Go's `%v` of a list of
    ObjectReferences (Kind, Namespace, Name, UID, APIVersion, ResourceVersion, FieldPath)."""
    refs = [("Group", "", g, "", "", "", "") for g in groups]
    refs += [("UserExtra", "", v, "", f"{_AUTHENTICATION}/v1", "", k) for k, vs in extra.items() for v in vs]
    if uid:
        refs.append(("UID", "", uid, "", f"{_AUTHENTICATION}/v1", "", ""))
    return "[" + " ".join("{" + " ".join(ref) + "}" for ref in refs) + "]"
