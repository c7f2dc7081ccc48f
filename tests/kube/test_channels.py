"""`lks.kube.streaming.channels`: a client message is decoded by the negotiated protocol, whatever
its frame type (upstream's `wsstream` reads text and binary frames alike)."""

from __future__ import annotations

import pytest

from lks.kube.streaming import channels


@pytest.mark.parametrize(("protocol", "message", "expected"), [
    pytest.param("v4.channel.k8s.io", b"\x00hi\n", (0, b"hi\n"), id="v4-binary"),
    pytest.param("v4.channel.k8s.io", "\x00hi\n", (0, b"hi\n"), id="v4-text"),  # the Python client's write_stdin(str)
    pytest.param("v5.channel.k8s.io", "\x00h\u00e9\n", (0, "h\u00e9\n".encode()), id="v5-text-utf8"),
    pytest.param("v5.channel.k8s.io", b"\xff\x00", (channels.CLOSE, b"\x00"), id="v5-close"),
    pytest.param("channel.k8s.io", "\x04{}", (4, b"{}"), id="v1-text-resize"),
    pytest.param("v4.base64.channel.k8s.io", "0aGkK", (0, b"hi\n"), id="base64-text"),
    pytest.param("v4.base64.channel.k8s.io", b"0aGkK", (0, b"hi\n"), id="base64-binary"),
    pytest.param("v4.channel.k8s.io", "", None, id="empty"),
])
def test_decode_by_protocol(protocol, message, expected):
    assert channels.decode(channels.parse(protocol), message) == expected
