"""Files Musaed creates are its owner's only: databases, secrets, logs (issue 25).

The databases hold national ids, phone numbers and live codes; any other
user of the machine could read a 0644 file. Every process we start calls
`private()` first (scripts/run.py, servers.py, cluster.py, backing.py, the
action and Rasa servers through their packages' imports, customer care), so
what it creates is 0600 and its directories 0700, whatever library creates
them (SQLite's -wal/-shm, SQLAlchemy, logging, Redis). The application
database and the secrets are also created 0600 explicitly (musaed/store,
musaed/keys.py), so they stay private when another program opens them first.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

# Group and others get nothing: files 0600, directories 0700.
PRIVATE_UMASK = 0o077


def private() -> int:
    """Make every file this process (and its children) creates owner-only; the previous umask."""
    return os.umask(PRIVATE_UMASK)


def create_private(path: "os.PathLike | str") -> None:
    """Create `path` empty and 0600 unless it exists (a program that opens it next keeps the mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def tighten(paths: Iterable[os.PathLike]) -> None:
    """Take group and others' access away from files and directories made before `private()`
    (a checkout upgraded in place keeps its var/); what does not exist is skipped."""
    for path in map(Path, paths):
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode) or not mode & 0o077:
            continue
        path.chmod(stat.S_IMODE(mode) & 0o700)
