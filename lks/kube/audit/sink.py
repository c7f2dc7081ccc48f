"""An audit log file: event lines queue in memory on the request path and one thread appends
them in batches (a moment later, or once many have gathered); past `MAX_BYTES` the file is
rotated (`audit.log.1` ... `.BACKUPS`). `lks.kube.audit` writes one per cluster.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

MAX_BYTES = 100 * 1024 * 1024  # a file is rotated past this size
BACKUPS = 5
FLUSH_DELAY = 0.2  # seconds events wait to be written with others
FLUSH_EVENTS = 2_000  # or this many, whichever comes first

_WRITER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")  # batches in order


class Sink:
    """One cluster's audit file: lines queue in memory and a thread appends them in batches."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS):
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._queue: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writing: asyncio.Future | None = None

    def write(self, line: bytes) -> None:
        self._queue.append(line)
        if len(self._queue) >= FLUSH_EVENTS:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._queue:
            batch, self._queue = self._queue, []
            self._writing = asyncio.get_running_loop().run_in_executor(_WRITER, self._append, b"".join(batch))

    async def drain(self) -> None:
        """Write what is queued and wait for it (shutdown, tests)."""
        self.flush()
        if self._writing is not None:
            await asyncio.shield(self._writing)

    def _append(self, data: bytes) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > self.max_bytes:
                self._rotate()
        except OSError as err:  # the cluster's folder went away (deleted): the events go too
            log.warning("audit log %s: %s", self.path, err)

    def _rotate(self) -> None:
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
