"""Kubernetes' URL library (`library/urls.go`): `url(s)` parses as Go's `url.ParseRequestURI`
(an absolute URL or an absolute path), `isURL(s)`, and the getters."""

from __future__ import annotations

import re
import urllib.parse

from lks.kube.cel.library import EvalError, function, tagged, text_of

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def _problem(text: str) -> str | None:
    """Why `url.ParseRequestURI` refuses `text`, or None."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in text):
        return "net/url: invalid control character in URL"
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme):
        if text.startswith("/"):
            return None
        return "invalid URI for request" if not colon or not scheme else "first path segment in URL cannot contain colon"
    if not rest.startswith("/"):
        return "invalid URI for request"
    try:
        urllib.parse.urlsplit(text).port  # noqa: B018  (a bad port raises)
    except ValueError:
        return f'invalid port "{":" + text.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[-1]}" after host'
    return None


@function("url", str)
def url(text: str) -> str:
    problem = _problem(text)
    if problem:
        raise EvalError(f"URL parse error during conversion from string: parse {text!r}: {problem}")
    return tagged("url", text)


@function("isURL", str)
def is_url(text: str) -> bool:
    return _problem(text) is None


def _split(u: str) -> urllib.parse.SplitResult:
    return urllib.parse.urlsplit(text_of(u))


@function("getScheme", "url")
def get_scheme(u: str) -> str:
    return _split(u).scheme


@function("getHost", "url")
def get_host(u: str) -> str:
    return _split(u).netloc.rpartition("@")[2]


@function("getHostname", "url")
def get_hostname(u: str) -> str:
    host = get_host(u)
    if host.startswith("["):
        return host[1:host.find("]")]
    return host.partition(":")[0]


@function("getPort", "url")
def get_port(u: str) -> str:
    host = get_host(u)
    host = host[host.find("]") + 1:] if host.startswith("[") else host
    return host.partition(":")[2]


@function("getEscapedPath", "url")
def get_escaped_path(u: str) -> str:
    path = _split(u).path
    return urllib.parse.quote(urllib.parse.unquote(path), safe="/:@!$&'()*+,;=-._~")


@function("getQuery", "url")
def get_query(u: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in urllib.parse.parse_qsl(_split(u).query, keep_blank_values=True):
        out.setdefault(key, []).append(value)
    return out
