"""Webhook servers that run inside the service: lks's own add-ons (Gatekeeper of the
`azurepolicy` add-on, `lks.policy.gatekeeper`) register the Service their webhook
configuration names, per cluster, and `targets` hands such a call to the handler instead of
dialing a pod. The call is the same AdmissionReview bytes in and out, under the webhook's
timeout, so everything `review` checks of a real webhook's answer holds here too; only the
TLS handshake and the socket are saved. One Service can serve several webhooks on their own
paths (Gatekeeper's `/v1/admit` and `/v1/mutate`): a handler registered for a path wins over
one for the whole Service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Handler = Callable[[bytes], Awaitable[tuple[int, bytes]]]  # AdmissionReview JSON -> (status, body)

# (cluster id, namespace, service, path or None for any path) -> handler
_HANDLERS: dict[tuple[str, str, str, str | None], Handler] = {}


def register(cluster_id: str, namespace: str, service: str, handler: Handler, *, path: str | None = None) -> None:
    _HANDLERS[(cluster_id, namespace, service, path)] = handler


def unregister(cluster_id: str, namespace: str, service: str, *, path: str | None = None) -> None:
    _HANDLERS.pop((cluster_id, namespace, service, path), None)


def lookup(cluster_id: str, namespace: str, service: str, path: str | None = None) -> Handler | None:
    found = _HANDLERS.get((cluster_id, namespace, service, path)) if path is not None else None
    return found or _HANDLERS.get((cluster_id, namespace, service, None))
