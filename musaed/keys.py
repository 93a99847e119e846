"""Secrets shared by Musaed's processes: receipt links, web sessions, and the like.

Each secret comes from its environment variable when set (several machines
must share it); otherwise from a random secret created once in a file beside
the database (mode 0600) and read from there by every process after.
"""

from __future__ import annotations

import os
import secrets

from musaed import store
from musaed.settings import Setting


def shared_secret(setting: Setting, file_name: str) -> bytes:
    """The secret in `setting` (musaed/settings.py), else the one in `file_name` beside the database.

    Creation is race-free: the secret is written to a private temporary file
    and hard-linked into place, so a process that loses the race reads the
    winner's complete file.
    """
    from_env = setting.given()
    if from_env:
        return from_env.encode("utf-8")
    path = store.db_path().parent / file_name
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{file_name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
        finally:
            tmp.unlink()
    text = path.read_text(encoding="ascii").strip()
    if not text:
        raise RuntimeError(f"{path} is empty: delete it and a new secret will be made")
    return bytes.fromhex(text)
