"""Who is asking (authentication), as kube-apiserver's authenticators answer it: a `User` with
a name, uid, groups and extra values, from the first authenticator that recognises the request.

A cluster knows its static tokens and the client certificates its CA signed; more token
authenticators (service-account JWTs) add themselves to `Cluster.token_authenticators`. A request
none of them recognises is anonymous (`system:anonymous` in `system:unauthenticated`), which the
authorizer then lets see only the public paths (`/healthz`, `/version` ...).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

AUTHENTICATED = "system:authenticated"  # the group of every authenticated user
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
MASTERS = "system:masters"  # upstream's privileged group: allowed everything, before any authorizer
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS = "system:serviceaccounts"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)

    @property
    def anonymous(self) -> bool:
        return self.name == ANONYMOUS

    def info(self) -> dict[str, Any]:
        """The user as authentication.k8s.io's UserInfo (in reviews, admission, audit)."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ANONYMOUS_USER = User(ANONYMOUS, (UNAUTHENTICATED,))
# the API server's own writes (its privileged loopback client, as kube-apiserver's)
APISERVER = User("system:apiserver", (MASTERS, AUTHENTICATED))

# A token authenticator: the bearer token -> the user it stands for, or None when it is not its own.
TokenAuthenticator = Callable[[str], Awaitable["User | None"]]


def authenticated(user: User) -> User:
    """`user` with `system:authenticated` among its groups (upstream's AuthenticatedGroupAdder)."""
    if AUTHENTICATED in user.groups:
        return user
    return User(user.name, (*user.groups, AUTHENTICATED), user.uid, user.extra)


def service_account_user(namespace: str, name: str, uid: str = "", extra: Mapping[str, tuple[str, ...]] | None = None) -> User:
    """The identity of a service account, with the groups upstream gives it."""
    return User(f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
                (SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED), uid, extra or {})


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a service account's username, else None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


# Who an in-process component (a controller, the scheduler) acts as: its writes through the
# registries are authorized as that user, as its requests would be if it were a client of the
# API server. Unset: the API server itself (its privileged loopback), never checked.
ACTING: contextvars.ContextVar[User | None] = contextvars.ContextVar("acting", default=None)


@contextlib.contextmanager
def acting_as(user: User | None) -> Iterator[None]:
    """Run as `user`: tasks started meanwhile keep acting as it (they copy the context)."""
    token = ACTING.set(user)
    try:
        yield
    finally:
        ACTING.reset(token)
