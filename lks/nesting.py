"""How deep a decoded request body nests, for the two APIs' body decoders
(`lks.kube.http.negotiation`, `lks.arm.app`).

Go's JSON decoder takes 10,000 levels and orjson's 1,024, but lks cannot do much with such
documents: orjson encodes at most 254 levels (a stored object, its list and its watch event add
a few), and Python's recursion limit is near too, so a deep body would fail later with a 500.
Bodies deeper than `MAX_DEPTH` are refused when decoded instead.
"""

from __future__ import annotations

import orjson

MAX_DEPTH = 200
_ORJSON_LIMIT = 254  # the deepest nesting orjson.dumps encodes


def too_deep(value: object, raw: bytes | bytearray | None = None) -> bool:
    """Whether a decoded body nests deeper than MAX_DEPTH. A JSON body (`raw`) with no more
    brackets than that cannot; otherwise orjson measures it, inside enough lists to make its own
    limit MAX_DEPTH (faster than any walk in Python)."""
    if raw is not None and raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    for _ in range(_ORJSON_LIMIT - MAX_DEPTH):
        value = [value]
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as err:
        return "Recursion" in str(err)  # "Recursion limit reached"; other failures are reported later
    return False
