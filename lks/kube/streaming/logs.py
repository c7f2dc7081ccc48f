"""`GET pods/<name>/log`: the `PodLogOptions` query parsed and validated as upstream does
(`ValidatePodLogOptions`, then `LogLocation`'s container choice), the container's state checked
as the kubelet does before it opens a log (`validateContainerLogStatus`), then the node's
kubelet (`lks.nodes.streams.Kubelet.logs`) streamed back as `text/plain`, flushed chunk by
chunk while following.
"""

from __future__ import annotations

import contextlib
import inspect
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lks.kube import errors, queryparams
from lks.kube.streaming import target

if TYPE_CHECKING:
    from lks.kube.registry import Registry
    from lks.nodes import streams

Obj = dict[str, Any]

_LOG_STREAMS = ("Stdout", "Stderr", "All")


def parse_bool(q: Any, name: str) -> bool:
    """A boolean option as the parameter codec reads one: false only for "0" or "false"."""
    return bool(queryparams.boolean(q, name))


def parse_int(q: Any, name: str) -> int | None:
    return queryparams.int64(q, name)


def parse_time(raw: str) -> float:
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise errors.bad_request(
            f'parsing time "{raw}" as "2006-01-02T15:04:05Z07:00": cannot parse "{raw}" as "2006"') from None


def parse_options(q: Any, name: str) -> tuple[streams.LogOptions, str | None]:
    """The options (container still unresolved: "" when not given) and the `stream` asked for."""
    streams = target.node_streams()
    since_raw = q.get("sinceTime")
    opts = streams.LogOptions(
        container=q.get("container") or "",
        follow=parse_bool(q, "follow"),
        previous=parse_bool(q, "previous"),
        tail_lines=parse_int(q, "tailLines"),
        since_seconds=parse_int(q, "sinceSeconds"),
        since_time=parse_time(since_raw) if since_raw else None,
        timestamps=parse_bool(q, "timestamps"),
        limit_bytes=parse_int(q, "limitBytes"),
    )
    parse_bool(q, "insecureSkipTLSVerifyBackend")  # accepted; there is no TLS hop to a kubelet here
    stream = q.get("stream")
    problems: list[tuple[str, str]] = []  # (field, "Invalid value: ...: detail" or "Forbidden: ...")
    if opts.tail_lines is not None and opts.tail_lines < 0:
        problems.append(("tailLines", f"Invalid value: {opts.tail_lines}: must be greater than or equal to 0"))
    if opts.limit_bytes is not None and opts.limit_bytes < 1:
        problems.append(("limitBytes", f"Invalid value: {opts.limit_bytes}: must be greater than 0"))
    if opts.since_seconds is not None and opts.since_time is not None:
        problems.append(("", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif opts.since_seconds is not None and opts.since_seconds < 1:
        problems.append(("sinceSeconds", f"Invalid value: {opts.since_seconds}: must be greater than 0"))
    if stream is not None:
        if stream not in _LOG_STREAMS:
            supported = ", ".join(f'"{s}"' for s in _LOG_STREAMS)
            problems.append(("stream", f'Unsupported value: "{stream}": supported values: {supported}'))
        if stream != "All" and opts.tail_lines is not None:
            problems.append(("", "Forbidden: `tailLines` and specific `stream` are mutually exclusive for now"))
    if problems:
        raise _invalid(name, problems)
    return opts, stream


def _invalid(name: str, problems: list[tuple[str, str]]) -> errors.APIError:
    """`errors.NewInvalid(PodLogOptions)`: field errors print as "<field>: <detail>" even when
    the field path is empty."""
    texts = [f"{f}: {m}" for f, m in problems]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    causes = []
    for f, m in problems:
        reason = ("FieldValueForbidden" if m.startswith("Forbidden") else
                  "FieldValueNotSupported" if m.startswith("Unsupported") else "FieldValueInvalid")
        cause = {"reason": reason, "message": m}
        if f:
            cause["field"] = f
        causes.append(cause)
    return errors.APIError(422, "Invalid", f'PodLogOptions "{name}" is invalid: {summary}',
                           details={"name": name, "kind": "PodLogOptions", "causes": causes})


def check_log_status(pod: Obj, container: str, previous: bool) -> None:
    """The kubelet's `validateContainerLogStatus`: is there a container whose log to show?"""
    pod_name = pod["metadata"]["name"]
    cs = target.container_status(pod, container)
    if cs is None:
        raise errors.bad_request(f'container "{container}" in pod "{pod_name}" is not available')
    state = cs.get("state") or {}
    last = (cs.get("lastState") or {}).get("terminated")
    waiting, running, terminated = state.get("waiting"), state.get("running"), state.get("terminated")
    if previous:
        if not last or not last.get("containerID"):
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{pod_name}" not found')
    elif running is not None:
        return
    elif terminated is not None:
        if not terminated.get("containerID") and not (last and last.get("containerID")):
            raise errors.bad_request(f'container "{container}" in pod "{pod_name}" is terminated')
    elif last is not None:
        if not last.get("containerID"):
            raise errors.bad_request(f'container "{container}" in pod "{pod_name}" is terminated')
    elif waiting is not None:
        reason = waiting.get("reason") or ""
        detail = {"ErrImagePull": "image can't be pulled",
                  "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
        raise errors.bad_request(f'container "{container}" in pod "{pod_name}" is waiting to start: {detail}')
    else:
        raise errors.bad_request(f'container "{container}" in pod "{pod_name}" is waiting to start - no logs yet')


async def serve(request: web.Request, reg: Registry, ns: str, name: str) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    streams = target.node_streams()
    opts, _stream = parse_options(request.query, name)
    pod = await reg.get(ns, name)
    opts.container = target.choose_container(pod, opts.container)
    if not (pod.get("spec") or {}).get("nodeName"):
        # LogLocation answers an unscheduled pod with an empty log
        return web.Response(body=b"", content_type="text/plain")
    kubelet = await target.kubelet_for(reg, pod, f"containerLogs/{ns}/{name}/{opts.container}")
    check_log_status(pod, opts.container, opts.previous)
    try:
        chunks = kubelet.logs(pod, opts)
        if inspect.isawaitable(chunks):
            chunks = await chunks
        it = chunks.__aiter__()
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            first = None
    except streams.StreamError as err:
        raise target.stream_error(err) from None
    resp = web.StreamResponse(headers={"Content-Type": "text/plain", "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        if first is not None:
            await resp.write(first)
            async for chunk in it:
                await resp.write(chunk)
    except (ConnectionError, streams.StreamError):
        pass  # the client left, or the node stopped serving mid-stream: end the body
    finally:
        with contextlib.suppress(Exception):
            await it.aclose()  # type: ignore[attr-defined]
    with contextlib.suppress(ConnectionError):
        await resp.write_eof()
    return resp
