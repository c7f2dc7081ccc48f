"""The ingress routing table (`lks.net.ingress.routes`) as ingress-nginx routes: hosts exact and
wildcard, the catch-all server, path types, longest match, default backends, oldest Ingress first."""

from __future__ import annotations

import pytest

from lks.net.ingress import routes


def ingress(name: str, *, rules: list[dict] | None = None, default: str | None = None, tls: list[dict] | None = None,
            created: str = "2026-01-01T00:00:00Z") -> dict:
    spec: dict = {"rules": rules or []}
    if default:
        spec["defaultBackend"] = {"service": {"name": default, "port": {"number": 80}}}
    if tls:
        spec["tls"] = tls
    return {"metadata": {"name": name, "namespace": "default", "creationTimestamp": created}, "spec": spec}


def rule(host: str | None, *paths: tuple[str, str, str]) -> dict:
    r: dict = {"http": {"paths": [{"path": p, "pathType": kind, "backend": {"service": {
        "name": svc, "port": {"number": 80}}}} for p, kind, svc in paths]}}
    if host:
        r["host"] = host
    return r


def target(table: routes.Table, host: str, path: str) -> str | None:
    _, backend = table.route(host, path)
    return backend.service if backend else None


TABLE = routes.build([
    ingress("main", rules=[
        rule("shop.example.com", ("/", "Prefix", "front"), ("/api", "Prefix", "api"), ("/api/v2", "Prefix", "api2"),
             ("/exact", "Exact", "exact"), ("/img", "ImplementationSpecific", "img"), ("/api/", "Exact", "apislash")),
        rule("*.example.com", ("/", "Prefix", "wild")),
        rule(None, ("/any", "Prefix", "anyhost")),
    ]),
    ingress("other", rules=[rule("docs.example.com", ("/guide", "Prefix", "guide"))], default="docs-default"),
])


@pytest.mark.parametrize(("host", "path", "want"), [
    pytest.param("shop.example.com", "/", "front", id="root"),
    pytest.param("shop.example.com", "/api", "api", id="prefix-itself"),
    pytest.param("shop.example.com", "/api/users", "api", id="prefix-element"),
    pytest.param("shop.example.com", "/apiary", "front", id="prefix-is-element-wise"),
    pytest.param("shop.example.com", "/api/v2/x", "api2", id="longest-prefix"),
    pytest.param("shop.example.com", "/api/", "apislash", id="exact-before-prefix-of-same-length"),
    pytest.param("shop.example.com", "/exact", "exact", id="exact"),
    pytest.param("shop.example.com", "/exact/more", "front", id="exact-only-itself"),
    pytest.param("shop.example.com", "/imgs/a.png", "img", id="implementation-specific-is-nginx-prefix"),
    pytest.param("SHOP.example.com:80", "/api", "api", id="host-case-and-port"),
    pytest.param("a.example.com", "/x", "wild", id="wildcard"),
    pytest.param("a.b.example.com", "/any", "anyhost", id="wildcard-one-label-only"),
    pytest.param("example.com", "/any", "anyhost", id="wildcard-not-the-bare-domain"),
    pytest.param("unknown.test", "/any/thing", "anyhost", id="catch-all"),
    pytest.param("unknown.test", "/nothing", "docs-default", id="catch-all-default-backend"),
    pytest.param("docs.example.com", "/guide/1", "guide", id="second-ingress"),
    pytest.param("docs.example.com", "/other", "docs-default", id="host-root-is-its-ingress-default"),
])
def test_routes(host: str, path: str, want: str | None) -> None:
    assert target(TABLE, host, path) == want


def test_no_default_backend_is_404() -> None:
    table = routes.build([ingress("a", rules=[rule("a.test", ("/x", "Prefix", "x"))])])
    assert target(table, "a.test", "/y") is None
    assert target(table, "b.test", "/x") is None  # no catch-all server at all


def test_the_older_ingress_wins_a_conflict() -> None:
    table = routes.build([
        ingress("new", rules=[rule("a.test", ("/", "Prefix", "new"))], created="2026-02-01T00:00:00Z"),
        ingress("old", rules=[rule("a.test", ("/", "Prefix", "old"))], created="2026-01-01T00:00:00Z"),
    ])
    assert target(table, "a.test", "/") == "old"


def test_named_ports_and_tls_hosts() -> None:
    ing = ingress("t", rules=[rule("secure.test", ("/", "Prefix", "s"))],
                  tls=[{"hosts": ["secure.test", "*.wild.test"], "secretName": "cert"}])
    ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"name": "web"}
    table = routes.build([ing])
    server, backend = table.route("secure.test", "/")
    assert backend == routes.Backend("default", "s", "web", "default/t")
    assert server is not None and server.tls == ("default", "cert")
    assert table.tls_secret("x.wild.test") == ("default", "cert")
    assert table.tls_secret("plain.test") is None


def test_ssl_redirect_annotations() -> None:
    tls = [{"hosts": ["s.test"], "secretName": "cert"}]
    plain = ingress("plain", rules=[rule("s.test", ("/", "Prefix", "s"))], tls=tls)
    off = ingress("off", rules=[rule("s.test", ("/off", "Prefix", "o"))], created="2026-01-02T00:00:00Z")
    off["metadata"]["annotations"] = {routes.SSL_REDIRECT: "false"}
    forced = ingress("forced", rules=[rule("f.test", ("/", "Prefix", "f"))])
    forced["metadata"]["annotations"] = {routes.FORCE_SSL_REDIRECT: "true"}
    table = routes.build([plain, off, forced])
    assert table.redirects(*table.route("s.test", "/x"))
    assert table.redirects(*table.route("s.test", "/nothing-here")) is True  # TLS host, its root
    assert not table.redirects(*table.route("s.test", "/off"))
    assert table.redirects(*table.route("f.test", "/"))
    assert not table.redirects(*table.route("other.test", "/"))
