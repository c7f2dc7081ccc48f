"""Stopping containers of the Process runtime (`lks.nodes.process`), as kubelet does: the
`preStop` hook, SIGTERM to the container's process group, SIGKILL when the grace period ends;
and the restart of a container whose liveness (or startup) probe failed (`lks.nodes.probes`).
`lks.nodes.launch` records the exit when the process has gone.
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Any

from lks.controllers.events import NORMAL, WARNING
from lks.nodes import probes
from lks.nodes import runtime as runtimes
from lks.nodes.instances import Instance
from lks.nodes.runtime import Container, Sandbox

if TYPE_CHECKING:
    from lks.nodes.process import ProcessRuntime

Obj = dict[str, Any]


class Termination:
    """The Process runtime's `stop_containers`, `kill` and `restart_unhealthy` (a mixin of
    `ProcessRuntime`)."""

    async def stop_containers(self: ProcessRuntime, sandbox: Sandbox, pod: Obj, containers: list[Container], *,
                              grace: float) -> None:
        now = self.clock.now()
        for c in containers:
            inst = self._by_id.get(c.id)
            if inst is None or not inst.running:
                if not c.exited(now) and inst is None:  # nothing runs it any more
                    c.exits, c.exit_code = now, runtimes.KILLED
                continue
            if c.stopping:
                if inst.deadline is not None and now + grace < inst.deadline:
                    self.kill(inst, grace=grace)
                continue
            c.stopping = True
            self.kill(inst, grace=grace)

    def kill(self: ProcessRuntime, inst: Instance, *, grace: float) -> None:
        """Stop one container (preStop, SIGTERM, SIGKILL after `grace`), in the background."""
        inst.container.stopping = True
        inst.deadline = self.clock.now() + grace
        if inst.stopper is not None:
            inst.stopper.cancel()
        inst.stopper = asyncio.create_task(self._stop(inst, grace), name=f"stop {inst.container.name}")

    async def _stop(self: ProcessRuntime, inst: Instance, grace: float) -> None:
        if not inst.termed:
            inst.termed = True
            hook = ((inst.spec.get("lifecycle") or {}).get("preStop"))
            if hook:
                await self._pre_stop(inst, hook, grace)
            inst.signal(signal.SIGTERM)
        assert inst.deadline is not None
        left = inst.deadline - self.clock.now()
        if left > 0:
            sleep = asyncio.ensure_future(self.clock.sleep(left))
            done = asyncio.ensure_future(inst.done.wait())
            try:
                await asyncio.wait([sleep, done], return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleep.cancel()
                done.cancel()
        if not inst.done.is_set():
            inst.signal(signal.SIGKILL)

    async def _pre_stop(self: ProcessRuntime, inst: Instance, hook: Obj, grace: float) -> None:
        ok, message = await probes.run_handler(self, inst, hook, timeout=grace)
        if not ok:
            kind = "Exec" if "exec" in hook else "HTTP"
            self.notify(inst.pod.namespace, inst.pod.name, [
                (WARNING, "FailedPreStopHook", f"{kind} lifecycle hook ({_hook_text(hook)}) for Container "
                                              f'"{inst.container.name}" in Pod "{inst.pod.name}_{inst.pod.namespace}'
                                              f'({inst.pod.uid})" failed - error: {message}')])


    def restart_unhealthy(self: ProcessRuntime, inst: Instance, probe: str) -> None:
        """A failed liveness (or startup) probe: the container is killed and restarted."""
        if inst.container.stopping or not inst.running:
            return
        spec_grace = (inst.spec.get(f"{probe}Probe") or {}).get("terminationGracePeriodSeconds")
        grace = float(spec_grace if spec_grace is not None else inst.pod.grace)
        self.probe_event(inst, NORMAL, "Killing", f"Container {inst.container.name} failed {probe} probe, "
                                                  "will be restarted")
        self.kill(inst, grace=grace)



def _hook_text(hook: Obj) -> str:
    if "exec" in hook:
        return str((hook["exec"] or {}).get("command") or [])
    return str(hook.get("httpGet") or hook)

