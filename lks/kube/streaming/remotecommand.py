"""`pods/exec` and `pods/attach`: the options (`PodExecOptions`, `PodAttachOptions`) and the
container checked before any upgrade, then the node's kubelet session
(`lks.nodes.streams.Session`) joined to the client over a WebSocket channel protocol
(`lks.kube.streaming.channels`, what kubectl 1.37 tries first) or over SPDY/3.1 streams
(`lks.kube.streaming.spdy`, kubectl's fallback when the WebSocket upgrade fails).

Failures before the upgrade answer like the kubelet behind upstream's upgrade-aware proxy:
validation errors and the node's refusals (`StreamError`) are `Status` objects, a container that
is not running is the kubelet's plain text `container not found ("c")` (kubectl prints
`unable to upgrade connection: ...`). After the
upgrade, the end of the command is reported on the error channel: `Success`, or `Failure` with
reason `NonZeroExitCode` and the exit code as the `ExitCode` cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from lks.kube import errors
from lks.kube.streaming import channels, spdy, target, upgrade
from lks.kube.streaming.logs import parse_bool

if TYPE_CHECKING:
    from lks.kube.registry import Registry
    from lks.nodes import streams

Obj = dict[str, Any]

SPDY_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                  "channel.k8s.io"]
STREAM_CREATION_TIMEOUT = 30.0  # the kubelet's DefaultStreamCreationTimeout
_READ = 32 * 1024


@dataclass(slots=True)
class Options:
    container: str
    command: list[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def parse_options(q: Any, *, exec_: bool) -> Options:
    opts = Options(container=q.get("container") or "", command=q.getall("command", []) if exec_ else [],
                   stdin=parse_bool(q, "stdin"), stdout=parse_bool(q, "stdout"), stderr=parse_bool(q, "stderr"),
                   tty=parse_bool(q, "tty"))
    if opts.tty and opts.stderr:
        opts.stderr = False  # the kubelet bypasses stderr with a TTY: it is merged into stdout
    if not (opts.stdin or opts.stdout or opts.stderr):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    if exec_ and not opts.command:
        raise errors.bad_request("you must specify at least 1 command")
    return opts


async def serve(request: web.Request, reg: Registry, ns: str, name: str, subresource: str) -> web.StreamResponse:
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    streams = target.node_streams()
    exec_ = subresource == "exec"
    opts = parse_options(request.query, exec_=exec_)
    pod = await reg.get(ns, name)
    opts.container = target.choose_container(pod, opts.container)
    if not (pod.get("spec") or {}).get("nodeName"):
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    path = f"{subresource}/{ns}/{name}/{opts.container}"
    kubelet = await target.kubelet_for(reg, pod, path)
    websocket = upgrade.wants_websocket(request)
    if not websocket and not upgrade.wants_spdy(request):
        raise errors.bad_request("Upgrade request required")
    ws: web.WebSocketResponse | None = None
    if websocket:
        ws = web.WebSocketResponse(protocols=channels.PROTOCOLS, autoping=True, max_msg_size=0)
        if not ws.can_prepare(request).ok:
            raise errors.bad_request("unable to upgrade: the request is not a valid WebSocket upgrade")
        _check_ws_protocol(request)
        proto_name = ""
    else:
        proto_name = upgrade.negotiate(request, SPDY_PROTOCOLS)
    cs = target.container_status(pod, opts.container) or {}
    if "running" not in (cs.get("state") or {}):
        # the kubelet's answer, plain text: kubectl shows "unable to upgrade connection: <text>"
        return web.Response(status=500, text=f'container not found ("{opts.container}")', content_type="text/plain")
    try:
        session = await _open(kubelet, pod, opts, exec_)
    except streams.StreamError as err:
        raise target.stream_error(err) from None
    describe = opts.command if exec_ else None
    try:
        if ws is not None:
            await ws.prepare(request)
            await _run_websocket(ws, channels.parse(ws.ws_protocol), session, opts, describe)
            return ws
        resp, pipe = await upgrade.spdy_upgrade(request, proto_name)
        await _run_spdy(pipe, proto_name, session, opts, describe)
        return resp
    except BaseException:  # the upgrade failed, or the server is stopping: nobody will talk to the process
        with contextlib.suppress(Exception):
            await session.close()
        raise


def _check_ws_protocol(request: web.Request) -> None:
    wanted = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    if wanted and not any(p in channels.PROTOCOLS for p in wanted):
        raise errors.bad_request(
            f"requested protocol(s) are not supported: [{' '.join(wanted)}]; supports [{' '.join(channels.PROTOCOLS)}]")


async def _open(kubelet: streams.Kubelet, pod: Obj, opts: Options, exec_: bool) -> streams.Session:
    if exec_:
        result = kubelet.exec(pod, opts.container, opts.command, stdin=opts.stdin, tty=opts.tty)
    else:
        result = kubelet.attach(pod, opts.container, stdin=opts.stdin, tty=opts.tty)
    return await result if inspect.isawaitable(result) else result


# -- the status written on the error channel -------------------------------------------------

def success() -> Obj:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, command: list[str] | None) -> Obj:
    what = f"error executing command [{' '.join(command)}], exit code {code}" if command is not None \
        else f"exit code {code}"
    return {"metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: {what}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def failure(code: int, reason: str, message: str) -> Obj:
    out: Obj = {"metadata": {}, "status": "Failure", "message": message}
    if reason:
        out["reason"] = reason
    out["code"] = code
    return out


def _status_bytes(status: Obj, json_status: bool) -> bytes:
    if json_status:
        return json.dumps(status, separators=(",", ":")).encode()
    return b"" if status.get("status") == "Success" else status.get("message", "").encode()


# -- joining a session to the client ------------------------------------------------------------

@dataclass
class _Client:
    """What the transport offers the session pump."""

    send_stdout: Callable[[bytes], Awaitable[None]]
    send_stderr: Callable[[bytes], Awaitable[None]]
    stdin: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)  # b"" = client closed stdin
    resize: asyncio.Queue[tuple[int, int]] = field(default_factory=asyncio.Queue)
    gone: asyncio.Event = field(default_factory=asyncio.Event)


async def _pump(session: streams.Session, client: _Client, opts: Options, command: list[str] | None) -> Obj | None:
    """Copy between the session and the client until the process ends; the status to report,
    or None when the client went away first."""

    streams = target.node_streams()

    async def copy_out(reader: asyncio.StreamReader | None, send: Callable[[bytes], Awaitable[None]]) -> None:
        if reader is None:
            return
        while data := await reader.read(_READ):
            await send(data)

    async def feed_stdin() -> None:
        while data := await client.stdin.get():
            await session.write_stdin(data)
        await session.close_stdin()

    async def resizes() -> None:
        while True:
            w, h = await client.resize.get()
            session.resize(w, h)

    helpers = [asyncio.create_task(resizes())]
    if opts.stdin:
        helpers.append(asyncio.create_task(feed_stdin()))
    outputs = asyncio.gather(copy_out(session.stdout if opts.stdout else None, client.send_stdout),
                             copy_out(session.stderr if opts.stderr else None, client.send_stderr))
    done_task = asyncio.ensure_future(_finish(session, outputs))
    gone = asyncio.create_task(client.gone.wait())
    try:
        await asyncio.wait([done_task, gone], return_when=asyncio.FIRST_COMPLETED)
        if not done_task.done():
            return None
        try:
            code = done_task.result()
        except streams.StreamError as err:
            return failure(err.code, err.reason, err.message)
        except ConnectionError:
            return None
        if code == 0 or command is None:
            return success()
        return exit_status(code, command)
    finally:
        for t in [*helpers, gone, done_task]:
            t.cancel()
        outputs.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*helpers, gone, done_task, outputs, return_exceptions=True)
        if not done_task.done() or done_task.cancelled():
            with contextlib.suppress(Exception):
                await session.close()


async def _finish(session: streams.Session, outputs: asyncio.Future) -> int:
    code = await session.wait()
    with contextlib.suppress(ConnectionError, TimeoutError):
        await asyncio.wait_for(asyncio.shield(outputs), 5.0)  # drain what the process wrote
    return code


async def _run_websocket(ws: web.WebSocketResponse, proto: channels.Protocol, session: streams.Session,
                         opts: Options, command: list[str] | None) -> None:
    lock = asyncio.Lock()

    async def send(channel: int, data: bytes) -> None:
        message = channels.encode(proto, channel, data)
        async with lock:
            if ws.closed:
                raise ConnectionResetError("websocket closed")
            if isinstance(message, str):
                await ws.send_str(message)
            else:
                await ws.send_bytes(message)

    client = _Client(lambda d: send(channels.STDOUT, d), lambda d: send(channels.STDERR, d))

    async def read() -> None:
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                decoded = channels.decode(proto, msg.data)
                if decoded is None:
                    continue
                channel, data = decoded
                if channel == channels.CLOSE:
                    if data == bytes([channels.STDIN]):
                        client.stdin.put_nowait(b"")
                elif channel == channels.STDIN and data:
                    client.stdin.put_nowait(data)
                elif channel == channels.RESIZE:
                    for size in _sizes(data):
                        client.resize.put_nowait(size)
        finally:
            client.gone.set()

    # an empty message on the lowest writable channel tells the client the streams are ready
    await send(channels.STDOUT if opts.stdout else channels.STDERR if opts.stderr else channels.ERROR, b"")
    reader = asyncio.create_task(read())
    try:
        status = await _pump(session, client, opts, command)
        if status is not None:
            with contextlib.suppress(ConnectionError):
                await send(channels.ERROR, _status_bytes(status, proto.json_status))
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close()
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader


def _sizes(data: bytes) -> list[tuple[int, int]]:
    """`{"Width":…,"Height":…}` objects, one or several back to back."""
    out, text, pos = [], data.decode(errors="replace"), 0
    decoder = json.JSONDecoder()
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break
        if isinstance(obj, dict):
            out.append((int(obj.get("Width") or 0), int(obj.get("Height") or 0)))
    return out


async def _run_spdy(pipe: spdy.Pipe, proto_name: str, session: streams.Session, opts: Options,
                    command: list[str] | None) -> None:
    version = channels.parse(proto_name).version
    expected = {"error"}
    if opts.stdin:
        expected.add("stdin")
    if opts.stdout:
        expected.add("stdout")
    if opts.stderr:
        expected.add("stderr")
    if opts.tty and version >= 3:
        expected.add("resize")
    found: dict[str, spdy.Stream] = {}
    ready = asyncio.Event()

    def on_stream(stream: spdy.Stream) -> None:
        kind = stream.header("streamType")
        if kind in expected and kind not in found:
            found[kind] = stream
            if expected <= found.keys():
                ready.set()

    conn = spdy.Session(pipe, on_stream)
    runner = asyncio.create_task(conn.run())
    try:
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait([waiter, runner], timeout=STREAM_CREATION_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not ready.is_set():
            with contextlib.suppress(Exception):
                await session.close()
            if "error" in found and not runner.done():
                await found["error"].write(b"timed out waiting for client to create streams")
            return

        async def send_to(kind: str, data: bytes) -> None:
            await found[kind].write(data)

        client = _Client(lambda d: send_to("stdout", d), lambda d: send_to("stderr", d))

        async def read_stdin() -> None:
            stream = found.get("stdin")
            if stream is None:
                return
            while data := await stream.read():
                client.stdin.put_nowait(data)
            client.stdin.put_nowait(b"")

        async def read_resize() -> None:
            stream = found.get("resize")
            if stream is None:
                return
            while data := await stream.read():
                for size in _sizes(data):
                    client.resize.put_nowait(size)

        async def watch() -> None:
            await runner
            client.gone.set()

        side = [asyncio.create_task(read_stdin()), asyncio.create_task(read_resize()), asyncio.create_task(watch())]
        try:
            status = await _pump(session, client, opts, command)
            if status is not None:
                for kind in ("stdout", "stderr"):
                    if kind in found:
                        await found[kind].close()
                body = _status_bytes(status, version >= 4)
                if body:
                    await found["error"].write(body)
                await found["error"].close()
        except ConnectionError:
            pass
        finally:
            for t in side:
                t.cancel()
    finally:
        await conn.close()
        runner.cancel()
        with contextlib.suppress(BaseException):
            await runner
