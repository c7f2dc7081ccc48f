"""What a request under a cluster asks for, read off its path and method (upstream's
`RequestInfoFactory`): API prefix, group, version, namespace, resource, name, subresource, verb.
Paths that are not resource requests (discovery, /version, health) have `is_resource=False`.
"""

from __future__ import annotations

from dataclasses import dataclass

from multidict import MultiMapping

from lks.kube import queryparams

_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclass(slots=True)
class RequestInfo:
    path: str
    verb: str
    is_resource: bool = False
    api_prefix: str = ""
    group: str = ""
    version: str = ""
    namespace: str | None = None
    resource: str = ""
    name: str = ""
    subresource: str = ""
    parts: tuple[str, ...] = ()


def parse(method: str, path: str, query: MultiMapping[str]) -> RequestInfo:
    """`path` is the part after `/clusters/<id>`."""
    verb = method.lower()
    info = RequestInfo(path=path, verb=verb)
    parts = [p for p in path.split("/") if p]
    info.parts = tuple(parts)
    if not parts or parts[0] not in ("api", "apis"):
        return info
    info.api_prefix = parts[0]
    rest = parts[1:]
    if info.api_prefix == "api":
        if not rest:
            return info
        info.version, rest = rest[0], rest[1:]
    else:
        if len(rest) < 2:
            if rest:
                info.group = rest[0]
            return info
        info.group, info.version, rest = rest[0], rest[1], rest[2:]
    if not rest:
        return info
    info.is_resource = True
    watch = False
    if rest[0] == "watch":  # deprecated /watch/ paths
        watch, rest = True, rest[1:]
    if len(rest) >= 2 and rest[0] == "namespaces":
        if len(rest) == 2 or rest[2] in _NAMESPACE_SUBRESOURCES:
            # /namespaces/<name>[/status|/finalize] is the namespace object itself
            info.resource, info.name = "namespaces", rest[1]
            info.subresource = "/".join(rest[2:])
            rest = []
        else:
            info.namespace, rest = rest[1], rest[2:]
    if rest:
        info.resource = rest[0]
        if len(rest) >= 2:
            info.name = rest[1]
        if len(rest) >= 3:
            info.subresource = "/".join(rest[2:])
    # map HTTP methods to Kubernetes verbs
    if verb == "get":
        if watch:
            info.verb = "watch"
        elif not info.name:  # upstream reads `watch` as a boolean parameter, and only for collections
            info.verb = "watch" if queryparams.boolean(query, "watch") else "list"
    elif verb == "post":
        info.verb = "create"
    elif verb == "put":
        info.verb = "update"
    elif verb == "delete" and not info.name:
        info.verb = "deletecollection"
    return info

