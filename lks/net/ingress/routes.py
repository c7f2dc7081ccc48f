"""The routing table of the in-process ingress controller, built from the Ingresses it serves as
ingress-nginx builds its nginx.conf (`internal/ingress/controller/controller.go`,
`getBackendServers`), and looked up per request. Pure: no I/O, rebuilt whole on a change.

- One server per host. Rules without a host, and every Ingress's `defaultBackend`, go to the
  catch-all server `_`, which answers a Host no server names. A wildcard host (`*.foo.com`)
  names one DNS label: `a.foo.com`, not `foo.com` nor `a.b.foo.com`; an exact server wins.
- Paths: `Exact` is the path alone (nginx `location =`); `Prefix` matches element-wise (`/foo`
  matches `/foo` and `/foo/bar`, not `/foobar`; a trailing `/` is ignored); `ImplementationSpecific`
  is nginx's own prefix location (`/foo` matches `/foobar`). The longest match wins, `Exact`
  before a prefix of the same length.
- A server with no location for a path answers from its root location: the `defaultBackend` of
  the Ingress naming the host, else the controller's default backend (404).
- Two Ingresses with the same host and path: the older one's wins (by creation, then name).
- TLS: a host listed in an Ingress's `tls` is served with that Secret and its plain HTTP is
  redirected to HTTPS (308, ingress-nginx's `ssl-redirect`), unless the routing Ingress says
  `nginx.ingress.kubernetes.io/ssl-redirect: "false"`; `force-ssl-redirect: "true"` redirects
  without TLS too.

`controller.py` builds the table from its caches; `proxy.py` serves it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
CATCH_ALL = "_"
SSL_REDIRECT = "nginx.ingress.kubernetes.io/ssl-redirect"
FORCE_SSL_REDIRECT = "nginx.ingress.kubernetes.io/force-ssl-redirect"


@dataclass(frozen=True, slots=True)
class Backend:
    """A Service port: `port` is its number (int) or name (str)."""

    namespace: str
    service: str
    port: int | str
    ingress: str  # namespace/name of the Ingress that routes here


@dataclass(slots=True)
class Location:
    path: str
    kind: str  # "Exact" | "Prefix" | "ImplementationSpecific"
    backend: Backend

    def matches(self, path: str) -> bool:
        if self.kind == "Exact":
            return path == self.path
        if self.kind == "Prefix":
            base = self.path.rstrip("/")
            return not base or path == base or path.startswith(base + "/")
        return path.startswith(self.path)

    def rank(self) -> tuple[int, int]:
        """Longest first, an exact location before a prefix of the same length."""
        length = len(self.path.rstrip("/")) if self.kind == "Prefix" else len(self.path)
        return (length, 1 if self.kind == "Exact" else 0)


@dataclass(slots=True)
class Server:
    host: str
    locations: list[Location] = field(default_factory=list)
    root: Backend | None = None  # answers what no location matches (None: 404)
    tls: tuple[str, str] | None = None  # (namespace, secret name)

    def route(self, path: str) -> Backend | None:
        for loc in self.locations:  # sorted by rank
            if loc.matches(path):
                return loc.backend
        return self.root


@dataclass(slots=True)
class Table:
    servers: dict[str, Server] = field(default_factory=dict)  # exact hosts and the catch-all
    wildcards: dict[str, Server] = field(default_factory=dict)  # "*.foo.com" by its suffix "foo.com"
    no_redirect: set[str] = field(default_factory=set)  # Ingresses (namespace/name) saying ssl-redirect "false"
    force_redirect: set[str] = field(default_factory=set)  # ... and force-ssl-redirect "true"

    def redirects(self, server: Server | None, backend: Backend | None) -> bool:
        """Whether plain HTTP to this route is sent to HTTPS."""
        ingress = backend.ingress if backend is not None else None
        if ingress in self.force_redirect:
            return True
        return server is not None and server.tls is not None and ingress not in self.no_redirect

    def server(self, host: str) -> Server | None:
        """The server for a Host header (port and trailing dot removed, any case)."""
        host = normalize_host(host)
        found = self.servers.get(host)
        if found is None and "." in host:
            found = self.wildcards.get(host.split(".", 1)[1])
        return found if found is not None else self.servers.get(CATCH_ALL)

    def route(self, host: str, path: str) -> tuple[Server | None, Backend | None]:
        server = self.server(host)
        return server, (server.route(path) if server is not None else None)

    def tls_secret(self, server_name: str) -> tuple[str, str] | None:
        """The Secret to serve a TLS handshake for SNI `server_name` with (None: the default)."""
        host = normalize_host(server_name)
        found = self.servers.get(host)
        if (found is None or found.tls is None) and "." in host:
            found = self.wildcards.get(host.split(".", 1)[1])
        return found.tls if found is not None else None


def normalize_host(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, with its port or not
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0].rstrip(".") if host.count(":") == 1 else host.rstrip(".")


def _backend(ingress: Obj, spec: Obj | None) -> Backend | None:
    service = (spec or {}).get("service")
    if not service or not service.get("name"):
        return None  # a `resource` backend: nothing ingress-nginx proxies to
    port = service.get("port") or {}
    number = port.get("number")
    meta = ingress["metadata"]
    return Backend(meta["namespace"], service["name"], int(number) if number else str(port.get("name") or ""),
                   f"{meta['namespace']}/{meta['name']}")


def _age(ingress: Obj) -> tuple[str, str, str]:
    meta = ingress["metadata"]
    return (meta.get("creationTimestamp") or "", meta.get("namespace") or "", meta.get("name") or "")


def build(ingresses: list[Obj]) -> Table:
    """The table for the Ingresses this controller serves."""
    table = Table()
    servers: dict[str, Server] = {}
    taken: set[tuple[str, str, str]] = set()  # (host, kind, path) already routed by an older Ingress

    def server(host: str) -> Server:
        if host not in servers:
            servers[host] = Server(host)
        return servers[host]

    for ing in sorted(ingresses, key=_age):
        spec = ing.get("spec") or {}
        meta = ing["metadata"]
        annotations = meta.get("annotations") or {}
        if annotations.get(SSL_REDIRECT) == "false":
            table.no_redirect.add(f"{meta['namespace']}/{meta['name']}")
        if annotations.get(FORCE_SSL_REDIRECT) == "true":
            table.force_redirect.add(f"{meta['namespace']}/{meta['name']}")
        default = _backend(ing, spec.get("defaultBackend"))
        if default is not None and server(CATCH_ALL).root is None:
            server(CATCH_ALL).root = default
        for rule in spec.get("rules") or []:
            host = (rule.get("host") or CATCH_ALL).lower()
            srv = server(host)
            if default is not None and srv.root is None and host != CATCH_ALL:
                srv.root = default
            for p in (rule.get("http") or {}).get("paths") or []:
                backend = _backend(ing, p.get("backend"))
                if backend is None:
                    continue
                kind = p.get("pathType") or "ImplementationSpecific"
                path = p.get("path") or "/"
                if (host, kind, path) in taken:
                    continue
                taken.add((host, kind, path))
                srv.locations.append(Location(path, kind, backend))
        for tls in spec.get("tls") or []:
            secret = tls.get("secretName")
            if not secret:
                continue
            for host in tls.get("hosts") or []:
                srv = server(host.lower())
                if srv.tls is None:
                    srv.tls = (ing["metadata"]["namespace"], secret)
    for host, srv in servers.items():
        srv.locations.sort(key=Location.rank, reverse=True)
        if host.startswith("*."):
            table.wildcards[host[2:]] = srv
        else:
            table.servers[host] = srv
    return table
