"""Webhook servers that run inside the service: lks's own add-ons (Gatekeeper of the
`azurepolicy` add-on, `lks.policy.gatekeeper`) register the Service their webhook
configuration names, per cluster, and `targets` hands such a call to the handler instead of
dialing a pod. The call is the same AdmissionReview bytes in and out, under the webhook's
timeout, so everything `review` checks of a real webhook's answer holds here too; only the
TLS handshake and the socket are saved.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Handler = Callable[[bytes], Awaitable[tuple[int, bytes]]]  # AdmissionReview JSON -> (status, body)

_HANDLERS: dict[tuple[str, str, str], Handler] = {}  # (cluster id, namespace, service) -> handler


def register(cluster_id: str, namespace: str, service: str, handler: Handler) -> None:
    _HANDLERS[(cluster_id, namespace, service)] = handler


def unregister(cluster_id: str, namespace: str, service: str) -> None:
    _HANDLERS.pop((cluster_id, namespace, service), None)


def lookup(cluster_id: str, namespace: str, service: str) -> Handler | None:
    return _HANDLERS.get((cluster_id, namespace, service))
