"""Content negotiation: which representation a client accepts, and decoding request bodies.

Request bodies may be JSON, YAML or Kubernetes protobuf (what kubectl sends for built-in types;
`lks.kube.protobuf` decodes it). Responses are JSON (or YAML when asked); protobuf responses are
not offered, so a client that accepts nothing else gets 406 and client-go's usual list
(`application/vnd.kubernetes.protobuf, application/json`) gets JSON. Alternate representations
(Table, PartialObjectMetadata) are chosen in `lks.kube.http.representation`.

What a body decodes to is bounded: JSON and protobuf grow linearly with the wire bytes (which
`errors.MAX_BODY_BYTES` caps), YAML goes through `lks.safeyaml` (alias bombs are refused before
they expand), and no body may nest deeper than `lks.nesting.MAX_DEPTH` (refused with the
"exceeded max depth" of Go's decoders, whose own limit is far higher).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

import orjson
import yaml
from aiohttp import web

from lks import nesting, safeyaml
from lks.kube import errors, gojson, protobuf
from lks.kube.http import offload

JSON = "application/json"
YAML = "application/yaml"
AGGREGATED_DISCOVERY = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@dataclass(frozen=True, slots=True)
class MediaType:
    type: str
    params: dict[str, str]

    @property
    def as_(self) -> str | None:
        return self.params.get("as")


def parse_accept(header: str | None) -> list[MediaType]:
    if not header:
        return [MediaType("*/*", {})]
    out = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        params = {}
        for f in fields[1:]:
            k, _, v = f.partition("=")
            params[k.strip()] = v.strip()
        out.append(MediaType(fields[0].lower(), params))
    return out or [MediaType("*/*", {})]


def wants_aggregated_discovery(accept: list[MediaType]) -> bool:
    for mt in accept:
        if mt.type == JSON and mt.as_ == "APIGroupDiscoveryList":
            return mt.params.get("g") == "apidiscovery.k8s.io" and mt.params.get("v") == "v2"
        if mt.type in (JSON, "*/*", "application/*") and not mt.as_:
            return False
    return False


_YAML_TYPES = (YAML, "application/x-yaml", "text/yaml")


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, without parameters, in lower case."""
    return (content_type or "").split(";")[0].strip().lower()


async def decode(body: bytes, content_type: str | None, kind: str | None = None) -> object:
    """`decode_body`, in a worker process when the body is large YAML (`lks.kube.http.offload`)."""
    if len(body) > offload.OFF_LOOP_BYTES and media_type(content_type) in _YAML_TYPES:
        return await offload.run(decode_body, body, content_type, kind)
    return decode_body(body, content_type, kind)


def decode_body(body: bytes, content_type: str | None, kind: str | None = None) -> object:
    """A request body as a JSON value; 415 for unknown formats, 400 for malformed ones. With the
    `kind` of object the body must hold, a malformed body's error is wrapped as upstream's
    `transformDecodeError` wraps it: ``the object provided is unrecognized (must be of type
    ConfigMap): couldn't get version/kind; json parse error: unexpected end of JSON input (7b22)``."""
    ctype = media_type(content_type or JSON)
    try:
        if ctype in ("", JSON, "*/*"):
            try:
                value = orjson.loads(body)
            except orjson.JSONDecodeError as err:
                raise _Malformed(f"couldn't get version/kind; json parse error: {gojson.syntax_error(body) or err}") from None
            if nesting.too_deep(value, body):
                raise _Malformed("couldn't get version/kind; json parse error: exceeded max depth")
            return _interpret(value)
        if ctype in _YAML_TYPES:
            return _interpret(_yaml_to_json(body))
        if ctype == protobuf.MEDIA_TYPE:  # kubectl's typed clients send built-in objects this way
            try:
                value = protobuf.decode(body)
            except protobuf.ProtobufError as err:
                raise _Malformed(str(err)) from None
            if nesting.too_deep(value):
                raise _Malformed("exceeded max depth")
            return value
    except _Malformed as err:
        raise errors.bad_request(unrecognized(kind, str(err), body) if kind else str(err)) from None
    raise errors.unsupported_media_type(ctype, [JSON, YAML, protobuf.MEDIA_TYPE])


class _Malformed(ValueError):
    """A body that does not decode: the message upstream's serializer gives."""


def _interpret(value: object) -> object:
    """`value`, once its apiVersion and kind read as the serializer reads them."""
    error = gojson.find_kind_error(value)
    if error is not None:
        raise _Malformed(f"couldn't get version/kind; json parse error: {error}")
    return value


def unrecognized(kind: str, message: str, body: bytes) -> str:
    """`transformDecodeError` of a body whose kind could not be read: the first 30 bytes shown
    as text when the body looks like a JSON object, else in hex (`summarizeData`)."""
    head = body[:30]
    if not body:
        summary = "<empty>"
    elif body[:1] == b"{":
        summary = head.decode("utf-8", "replace")
    else:
        summary = head.hex()
    if len(body) > 30:
        summary += " ..."
    return f"the object provided is unrecognized (must be of type {kind}): {message} ({summary})"


def _yaml_to_json(body: bytes) -> object:
    try:
        value = safeyaml.load(body)
    except safeyaml.YAMLError as err:
        raise _Malformed(f"error converting YAML to JSON: {safeyaml.message(err)}") from None
    if nesting.too_deep(value):
        raise _Malformed(f"error converting YAML to JSON: yaml: exceeded max depth of {nesting.MAX_DEPTH}")
    # round-trip through JSON so that YAML-only values (sets, binary) fail as upstream's do
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError) as err:
        raise _Malformed(f"error converting YAML to JSON: {err}") from None


# whether the request being served asked for indented JSON (`wants_pretty`); set per request task
PRETTY: ContextVar[bool] = ContextVar("pretty", default=False)
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")


def wants_pretty(query: object, user_agent: str | None) -> bool:
    """Upstream's `isPrettyPrint`: `?pretty=` when given (Go's ParseBool; a value it cannot parse
    means no), else curl, Wget and browsers get indented JSON."""
    raw = query.get("pretty") or ""  # type: ignore[attr-defined]
    if raw:
        return raw in _GO_TRUE
    return (user_agent or "").startswith(("curl", "Wget", "Mozilla/5.0"))


def encode(obj: object, fmt: str, *, pretty: bool | None = None) -> tuple[bytes, str]:
    """A response body. JSON ends with a newline, as Go's `json.Encoder` writes it (clients
    compare error texts byte for byte); pretty JSON (`pretty`, by default the request's wish) is
    indented by two spaces and ends without one, as `json.MarshalIndent` writes it."""
    if fmt == "yaml":
        return yaml.safe_dump(obj, sort_keys=False).encode(), YAML
    if PRETTY.get() if pretty is None else pretty:
        return orjson.dumps(obj, option=orjson.OPT_INDENT_2), JSON
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE), JSON


async def read_body(request: web.Request) -> bytes:
    """The request body, within kube-apiserver's limit (413 beyond it)."""
    if request.content_length is not None and request.content_length > errors.MAX_BODY_BYTES:
        raise errors.too_large()
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > errors.MAX_BODY_BYTES:
            raise errors.too_large()
        chunks.append(chunk)
    return b"".join(chunks)
