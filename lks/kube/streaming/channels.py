"""The WebSocket channel protocols of Kubernetes streaming (`k8s.io/apimachinery/.../wsstream`):
each binary message starts with a channel byte (stdin 0, stdout 1, stderr 2, error 3, resize 4)
followed by the data; the `base64.` variants send text messages whose first character is the
channel digit and whose rest is base64. `v5.channel.k8s.io` adds the close signal: a message
`[255, channel]` half-closes a channel (kubectl sends it when its stdin ends).

Before v4, the error channel carries plain text and only on failure; from v4 on it carries a
JSON `Status`. `lks.kube.streaming.remotecommand` drives exec and attach over these.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
V1 = "channel.k8s.io"

# Offered to WebSocket clients, newest first (a client's own order decides among them).
PROTOCOLS = [V5, "v5.base64.channel.k8s.io", V4, "v4.base64.channel.k8s.io", V1, "base64.channel.k8s.io"]


@dataclass(frozen=True, slots=True)
class Protocol:
    name: str
    version: int  # 1 (channel.k8s.io), 4 or 5
    base64: bool

    @property
    def json_status(self) -> bool:
        return self.version >= 4


def parse(name: str | None) -> Protocol:
    """The protocol a negotiated subprotocol names; none at all means `channel.k8s.io`."""
    name = name or V1
    b64 = ".base64." in f".{name}"
    version = int(name[1]) if name.startswith("v") and name[1].isdigit() else 1
    return Protocol(name, version, b64)


def encode(proto: Protocol, channel: int, data: bytes) -> bytes | str:
    """One message: bytes for binary protocols, str for base64 ones."""
    if proto.base64:
        return chr(ord("0") + channel) + base64.b64encode(data).decode()
    return bytes([channel]) + data


def decode(proto: Protocol, message: bytes | str) -> tuple[int, bytes] | None:
    """(channel, data) of a message from the client; (CLOSE, [channel]) for a close signal;
    None for an empty or undecodable message.

    The negotiated protocol decides the encoding, not the frame type, as upstream's `wsstream`
    reads both alike: the Python client's `write_stdin(str)` sends `chr(0) + data` as a text
    frame under `v4.channel.k8s.io`, and a base64 client may send binary frames."""
    if isinstance(message, str):
        message = message.encode()
    if not message:
        return None
    if proto.version >= 5 and message[0] == CLOSE:
        return (CLOSE, message[1:2]) if len(message) == 2 else None
    channel = message[0]
    if proto.base64:
        try:
            return channel - ord("0"), base64.b64decode(message[1:])
        except ValueError:
            return None
    return channel, bytes(message[1:])
