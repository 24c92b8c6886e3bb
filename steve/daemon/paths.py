"""Where steved keeps its files: all inside the repository's private ``.steve``."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

SOCKET_NAME = "steved.sock"
PID_NAME = "steved.pid"
LOCK_NAME = "steved.lock"
LOG_NAME = "steved.log"
SUN_PATH_MAX = 107
"""sun_path holds 108 bytes with the terminating NUL."""


@dataclass(frozen=True)
class DaemonPaths:
    steve_dir: Path

    @property
    def socket(self) -> Path:
        return self.steve_dir / SOCKET_NAME

    @property
    def pid(self) -> Path:
        return self.steve_dir / PID_NAME

    @property
    def lock(self) -> Path:
        return self.steve_dir / LOCK_NAME

    @property
    def log(self) -> Path:
        return self.steve_dir / LOG_NAME


def socket_address(path: Path) -> tuple[str, int | None]:
    """An address that reaches ``path`` for bind/connect, and a directory fd to close
    afterwards.  A path longer than sun_path goes through ``/proc/self/fd/N/NAME``
    (N an O_PATH descriptor of the directory), which the kernel resolves like the
    long path: the same file, the same permission checks."""
    text = os.fsencode(path)
    if len(text) <= SUN_PATH_MAX:
        return str(path), None
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{path.name}", fd


def connect_unix(path: Path, timeout: float | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address, fd = socket_address(path)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    finally:
        if fd is not None:
            os.close(fd)
    sock.settimeout(None)
    return sock
