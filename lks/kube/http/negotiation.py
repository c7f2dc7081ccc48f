"""Content negotiation: which representation a client accepts, and decoding request bodies.

Request bodies may be JSON, YAML or Kubernetes protobuf (what kubectl sends for built-in types;
`lks.kube.protobuf` decodes it). Responses are JSON (or YAML when asked); protobuf responses are
not offered, so a client that accepts nothing else gets 406 and client-go's usual list
(`application/vnd.kubernetes.protobuf, application/json`) gets JSON. Alternate representations
(Table, PartialObjectMetadata) are chosen in `lks.kube.http.representation`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import yaml

from lks.kube import errors, protobuf

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


def decode_body(body: bytes, content_type: str | None) -> object:
    """A request body as a JSON value; 415 for unknown formats, 400 for malformed ones."""
    ctype = (content_type or JSON).split(";")[0].strip().lower()
    if ctype in ("", JSON, "*/*"):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as err:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {err}") from None
    if ctype in (YAML, "application/x-yaml", "text/yaml"):
        return decode_yaml(body)
    if ctype == protobuf.MEDIA_TYPE:  # kubectl's typed clients send built-in objects this way
        try:
            return protobuf.decode(body)
        except protobuf.ProtobufError as err:
            raise errors.bad_request(str(err)) from None
    raise errors.unsupported_media_type(ctype, [JSON, YAML, protobuf.MEDIA_TYPE])


def decode_yaml(body: bytes) -> object:
    try:
        value = yaml.load(body, Loader=yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader)
    except yaml.YAMLError as err:
        raise errors.bad_request(f"error converting YAML to JSON: {err}".replace("\n", " ")) from None
    # round-trip through JSON so that YAML-only values (dates, sets) fail like upstream
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError) as err:
        raise errors.bad_request(f"error converting YAML to JSON: {err}") from None


def encode(obj: object, fmt: str) -> tuple[bytes, str]:
    if fmt == "yaml":
        return yaml.safe_dump(obj, sort_keys=False).encode(), YAML
    return orjson.dumps(obj), JSON
