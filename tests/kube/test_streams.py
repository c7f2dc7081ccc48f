"""Pod streams through the API server (`lks.kube.streaming`): `log` options and errors, and
exec/attach over the WebSocket channel protocols, against a fake kubelet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import ClientPayloadError, WSMsgType, test_utils

from lks.kube.cluster import Cluster
from lks.kube.registry import WriteOptions
from lks.nodes import streams

from .conftest import AUTH
from .fakekubelet import FakeKubelet

NODE = "aks-nodepool1-12345678-vmss000000"
BASE = "/clusters/c1/api/v1/namespaces/default/pods"


@pytest.fixture
def kubelet(cluster: Cluster) -> Iterator[FakeKubelet]:
    k = FakeKubelet(log_lines=[b"one\n", b"two\n"])
    streams.register(cluster.id, NODE, k)
    yield k
    streams.unregister(cluster.id, NODE)


async def make_pod(cluster: Cluster, name: str, containers: tuple[str, ...] = ("main",), *,
                   node: str | None = NODE, state: dict[str, Any] | None = None, **status: Any) -> dict:
    pods = cluster.registry("", "v1", "pods")
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if node:
        spec["nodeName"] = node
    await pods.create("default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec},
                      WriteOptions())
    state = state if state is not None else {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    statuses = [{"name": c, "image": "busybox", "imageID": "", "ready": True, "restartCount": 0,
                 "state": state, **({"containerID": f"lks://{c}"} if "running" in state else {})} for c in containers]
    body = {"phase": "Running", "containerStatuses": statuses, **status}
    return await pods.patch("default", name, lambda cur: {**cur, "status": body}, subresource="status")


async def add_node(cluster: Cluster) -> None:
    await cluster.registry("", "v1", "nodes").create(None, {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.224.0.4"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}, WriteOptions())


# -- logs ------------------------------------------------------------------------------------------

async def test_logs_stream_the_kubelets_chunks(cluster, client: test_utils.TestClient, kubelet):
    await make_pod(cluster, "p")
    resp = await client.get(f"{BASE}/p/log", params={"tailLines": "5", "timestamps": "true"}, headers=AUTH)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert await resp.read() == b"one\ntwo\n"
    opts = kubelet.log_options[-1]
    assert (opts.container, opts.tail_lines, opts.timestamps, opts.follow) == ("main", 5, True, False)


async def test_follow_streams_until_the_kubelet_ends(cluster, client, kubelet):
    await make_pod(cluster, "p")
    resp = await client.get(f"{BASE}/p/log", params={"follow": "true"}, headers=AUTH)
    assert resp.status == 200
    assert await resp.content.readline() == b"one\n"
    assert await resp.content.readline() == b"two\n"
    kubelet.follow_gate.set()
    assert await resp.content.read() == b"after follow\n"


async def test_shutdown_ends_following_streams(cluster, client, kubelet, kube_api):
    await make_pod(cluster, "p")
    resp = await client.get(f"{BASE}/p/log", params={"follow": "true"}, headers=AUTH)
    assert await resp.content.readline() == b"one\n"
    await kube_api.close_streams()
    with pytest.raises(ClientPayloadError):  # the body ends without its last chunk
        await resp.content.read()


async def test_since_time_is_parsed(cluster, client, kubelet):
    await make_pod(cluster, "p")
    resp = await client.get(f"{BASE}/p/log", params={"sinceTime": "2026-01-01T00:00:10Z", "limitBytes": "3"},
                            headers=AUTH)
    assert resp.status == 200
    assert kubelet.log_options[-1].since_time == 1767225610.0
    assert kubelet.log_options[-1].limit_bytes == 3


async def status_of(resp) -> dict:
    body = await resp.json()
    assert body["kind"] == "Status"
    return body


@pytest.mark.parametrize(("params", "code", "message"), [
    pytest.param({"container": "nope"}, 400, "container nope is not valid for pod p2", id="unknown-container"),
    pytest.param({}, 400, "a container name must be specified for pod p2, choose one of: [a b]", id="no-container"),
    pytest.param({"container": "a", "sinceSeconds": "5", "sinceTime": "2026-01-01T00:00:00Z"}, 422,
                 'PodLogOptions "p2" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` '
                 "may be specified", id="since-both"),
    pytest.param({"container": "a", "tailLines": "-1"}, 422,
                 'PodLogOptions "p2" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0',
                 id="negative-tail"),
    pytest.param({"container": "a", "limitBytes": "0"}, 422,
                 'PodLogOptions "p2" is invalid: limitBytes: Invalid value: 0: must be greater than 0', id="limit"),
    pytest.param({"container": "a", "tailLines": "x"}, 400, 'strconv.ParseInt: parsing "x": invalid syntax',
                 id="not-a-number"),
    pytest.param({"container": "a", "limitBytes": "99999999999999999999"}, 400,
                 'strconv.ParseInt: parsing "99999999999999999999": value out of range', id="out-of-range"),
])
async def test_log_option_errors(cluster, client, kubelet, params, code, message):
    await make_pod(cluster, "p2", ("a", "b"))
    resp = await client.get(f"{BASE}/p2/log", params=params, headers=AUTH)
    assert resp.status == code
    assert (await status_of(resp))["message"] == message


async def test_waiting_container_has_no_log(cluster, client, kubelet):
    await make_pod(cluster, "w", state={"waiting": {"reason": "ContainerCreating"}})
    resp = await client.get(f"{BASE}/w/log", headers=AUTH)
    assert resp.status == 400
    body = await status_of(resp)
    assert body["reason"] == "BadRequest"
    assert body["message"] == 'container "main" in pod "w" is waiting to start: ContainerCreating'


async def test_previous_without_a_terminated_container(cluster, client, kubelet):
    await make_pod(cluster, "p")
    resp = await client.get(f"{BASE}/p/log", params={"previous": "true"}, headers=AUTH)
    assert resp.status == 400
    assert (await status_of(resp))["message"] == 'previous terminated container "main" in pod "p" not found'


async def test_kubelet_stream_error_becomes_the_status(cluster, client, kubelet):
    pod = await make_pod(cluster, "refuse")
    pods = cluster.registry("", "v1", "pods")
    cs = pod["status"]["containerStatuses"][0]
    cs["lastState"] = {"terminated": {"exitCode": 1, "containerID": "lks://old", "reason": "Error"}}
    await pods.patch("default", "refuse", lambda cur: {**cur, "status": pod["status"]}, subresource="status")
    resp = await client.get(f"{BASE}/refuse/log", params={"previous": "1"}, headers=AUTH)
    assert resp.status == 400
    assert (await status_of(resp))["message"] == "no previous log"


async def test_unscheduled_pod_has_an_empty_log(cluster, client, kubelet):
    await make_pod(cluster, "pending", node=None)
    resp = await client.get(f"{BASE}/pending/log", headers=AUTH)
    assert resp.status == 200
    assert await resp.read() == b""


async def test_node_without_kubelet_is_unreachable(cluster, client):
    await add_node(cluster)
    await make_pod(cluster, "p")
    resp = await client.get(f"{BASE}/p/log", headers=AUTH)
    assert resp.status == 500
    assert (await status_of(resp))["message"] == (
        'Get "https://10.224.0.4:10250/containerLogs/default/p/main": dial tcp 10.224.0.4:10250: '
        "connect: connection refused")


async def test_streams_need_credentials(cluster, client, kubelet):
    await make_pod(cluster, "p")
    assert (await client.get(f"{BASE}/p/log")).status == 401
    resp = await client.get(f"{BASE}/p/exec", params={"command": "echo", "stdout": "1"})
    assert resp.status == 401


# -- exec and attach over WebSocket ----------------------------------------------------------------

async def ws_exec(client, path: str, params: list[tuple[str, str]], protocol: str = "v5.channel.k8s.io",
                  stdin: list[bytes] | None = None, close_stdin: bool = True, resize: bytes | None = None):
    """Run one exec; returns (negotiated protocol, {channel: bytes})."""
    ws = await client.ws_connect(path, params=params, protocols=[protocol], headers=AUTH)
    out: dict[int, bytes] = {}
    for data in stdin or []:
        await ws.send_bytes(b"\x00" + data)
    if resize is not None:
        await ws.send_bytes(b"\x04" + resize)
    if stdin is not None and close_stdin:
        await ws.send_bytes(b"\xff\x00")
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            out[msg.data[0]] = out.get(msg.data[0], b"") + msg.data[1:]
        elif msg.type == WSMsgType.TEXT:
            out[ord(msg.data[0]) - 48] = out.get(ord(msg.data[0]) - 48, b"") + msg.data[1:].encode()
    return ws.protocol, out


async def test_exec_echo_reports_success(cluster, client, kubelet):
    await make_pod(cluster, "p")
    proto, out = await ws_exec(client, f"{BASE}/p/exec",
                               [("command", "echo"), ("command", "hi"), ("stdout", "true"), ("stderr", "true")])
    assert proto == "v5.channel.k8s.io"
    assert out[1] == b"hi\n"
    assert json.loads(out[3]) == {"metadata": {}, "status": "Success"}


async def test_exec_stdin_is_closed_by_the_close_frame(cluster, client, kubelet):
    await make_pod(cluster, "p")
    _, out = await ws_exec(client, f"{BASE}/p/exec", [("command", "cat"), ("stdin", "true"), ("stdout", "true")],
                           stdin=[b"abc", b"def"])
    assert out[1] == b"abcdef"
    assert json.loads(out[3])["status"] == "Success"


async def test_exec_exit_code(cluster, client, kubelet):
    await make_pod(cluster, "p")
    _, out = await ws_exec(client, f"{BASE}/p/exec",
                           [("command", "exit"), ("command", "3"), ("stdout", "true"), ("stderr", "true")],
                           protocol="v4.channel.k8s.io")
    status = json.loads(out[3])
    assert status["status"] == "Failure"
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_exec_stderr_channel(cluster, client, kubelet):
    await make_pod(cluster, "p")
    _, out = await ws_exec(client, f"{BASE}/p/exec", [("command", "err"), ("command", "bad"), ("stdout", "true"),
                                                      ("stderr", "true")])
    assert out[2] == b"bad\n"


async def test_exec_tty_resize(cluster, client, kubelet):
    await make_pod(cluster, "p")
    await ws_exec(client, f"{BASE}/p/exec", [("command", "cat"), ("stdin", "true"), ("stdout", "true"),
                                             ("tty", "true")],
                  stdin=[b"x"], resize=b'{"Width":100,"Height":40}')
    assert kubelet.sessions[-1].resizes == [(100, 40)]
    assert kubelet.sessions[-1].stderr is None


async def test_base64_protocol(cluster, client, kubelet):
    await make_pod(cluster, "p")
    ws = await client.ws_connect(f"{BASE}/p/exec", params=[("command", "echo"), ("command", "b64"),
                                                            ("stdout", "1")],
                                 protocols=["base64.channel.k8s.io"], headers=AUTH)
    texts = [msg.data async for msg in ws if msg.type == WSMsgType.TEXT]
    assert ws.protocol == "base64.channel.k8s.io"
    assert "1YjY0Cg==" in texts  # "b64\n" on stdout; v1 sends no status on success


async def test_attach(cluster, client, kubelet):
    await make_pod(cluster, "p")
    _, out = await ws_exec(client, f"{BASE}/p/attach", [("stdin", "true"), ("stdout", "true")], stdin=[b"hello"])
    assert out[1] == b"hello"
    assert json.loads(out[3])["status"] == "Success"


async def test_client_leaving_closes_the_session(cluster, client, kubelet):
    await make_pod(cluster, "p")
    ws = await client.ws_connect(f"{BASE}/p/exec", params=[("command", "cat"), ("stdin", "1"), ("stdout", "1")],
                                 protocols=["v5.channel.k8s.io"], headers=AUTH)
    await ws.send_bytes(b"\x00ping")
    msg = await ws.receive()
    while msg.data == b"\x01":  # the empty "ready" message
        msg = await ws.receive()
    assert msg.data == b"\x01ping"
    await ws.close()
    for _ in range(100):
        if kubelet.sessions[-1].closed:
            break
        await __import__("asyncio").sleep(0.01)
    assert kubelet.sessions[-1].closed


@pytest.mark.parametrize(("params", "code", "text"), [
    pytest.param([("stdout", "1")], 400, "you must specify at least 1 command", id="no-command"),
    pytest.param([("command", "ls")], 400, "you must specify at least 1 of stdin, stdout, stderr", id="no-stream"),
    pytest.param([("command", "ls"), ("stdout", "1"), ("container", "x")], 400, "container x is not valid for pod p",
                 id="bad-container"),
])
async def test_exec_refused_before_upgrade(cluster, client, kubelet, params, code, text):
    await make_pod(cluster, "p")
    resp = await client.post(f"{BASE}/p/exec", params=params, headers={**AUTH, "Connection": "Upgrade",
                                                                       "Upgrade": "SPDY/3.1"})
    assert resp.status == code
    assert (await resp.json())["message"] == text


async def test_exec_in_a_container_that_is_not_running(cluster, client, kubelet):
    await make_pod(cluster, "w", state={"waiting": {"reason": "ContainerCreating"}})
    resp = await client.post(f"{BASE}/w/exec", params=[("command", "ls"), ("stdout", "1")],
                             headers={**AUTH, "Connection": "Upgrade", "Upgrade": "SPDY/3.1"})
    assert resp.status == 500
    assert await resp.text() == 'container not found ("main")'  # kubectl: unable to upgrade connection: ...


async def test_exec_kubelet_refusal(cluster, client, kubelet):
    await make_pod(cluster, "p")
    resp = await client.get(f"{BASE}/p/exec", params=[("command", "missing"), ("stdout", "1")],
                            headers={**AUTH, "Connection": "Upgrade", "Upgrade": "websocket",
                                     "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                     "Sec-WebSocket-Protocol": "v5.channel.k8s.io"})
    assert resp.status == 500
    body = await resp.json()
    assert (body["reason"], body["message"]) == ("InternalError", 'exec: "missing": executable file not found in $PATH')


async def test_exec_on_unscheduled_pod(cluster, client, kubelet):
    await make_pod(cluster, "pending", node=None)
    resp = await client.post(f"{BASE}/pending/exec", params=[("command", "ls"), ("stdout", "1")], headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["message"] == "pod pending does not have a host assigned"
