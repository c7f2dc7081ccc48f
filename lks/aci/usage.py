"""What a container group is billed, as ACI bills it: per second, from the moment its containers
start until they stop, for the CPU cores and memory the group requests (not what it uses).
`Meter` counts the running seconds of each group; `bill` turns them into ACI's meters.
ACI itself exposes no usage on the group (Azure Cost Management shows the charges); lks shows
`properties.billing` on every group (`lks.aci.groups`).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Meter:
    def __init__(self, now: Callable[[], float] = time.monotonic):
        self.now = now
        self._since: dict[str, float] = {}  # key -> when it started running (running groups only)
        self._done: dict[str, float] = {}  # key -> seconds counted before

    def start(self, key: str) -> None:
        self.pause(key)
        self._since[key] = self.now()

    def pause(self, key: str) -> None:
        """The group's containers have all stopped: its seconds stop counting."""
        since = self._since.pop(key, None)
        if since is not None:
            self._done[key] = self._done.get(key, 0.0) + self.now() - since

    def stop(self, key: str) -> float:
        """The seconds counted since the group last started (and forget it)."""
        self.pause(key)
        return self._done.pop(key, 0.0)

    def seconds(self, key: str) -> float:
        since = self._since.get(key)
        return self._done.get(key, 0.0) + (self.now() - since if since is not None else 0.0)


def bill(seconds: float, cpu: float, memory_gb: float) -> dict[str, float]:
    """ACI's two meters ("vCPU Duration", "Memory Duration") for `seconds` of a group's life."""
    return {"runningSeconds": round(seconds, 3), "cpuCoreSeconds": round(seconds * cpu, 3),
            "memoryGBSeconds": round(seconds * memory_gb, 3), "requestedCpu": cpu, "requestedMemoryInGB": memory_gb}
