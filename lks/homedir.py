"""`$LKS_HOME` is private to its owner: it holds every cluster's CA key and tokens (in `lks.db`
and the clusters' stores), so no one else may read any of it, whatever the umask.

One mechanism covers every writer: `make_private` sets the process's umask to 077, so what the
service creates from then on (SQLite files with their WAL and SHM, PKI, node data) is 0600 or
0700, and fixes what an earlier version or a loose umask left readable. `lks.server` calls it
before anything opens a file in the home; the process runtime gives pods the usual 022 back.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

UMASK = 0o077
_OTHERS = 0o077  # group and world bits


def make_private(home: Path) -> None:
    """Create `home` if need be, set the private umask, and take the group and world bits off
    the home and everything under it (a folder becomes at most 0700, a file at most 0600, an
    owner's executable bit stays)."""
    os.umask(UMASK)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    _fix(home)
    for root, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            _fix(Path(root, name))


def _fix(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:  # gone meanwhile (a pod's file)
        return
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & _OTHERS:
        return
    try:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~_OTHERS)
    except (FileNotFoundError, PermissionError):  # a file another user owns (a pod's as root)
        pass
