"""Real file systems for tests that need a full disk or read-only media.

The tests run as root, so ``chmod`` does not stop a write; a small tmpfs is
mounted instead (``mount -t tmpfs -o size=...``), filled up or remounted
read-only.  When the mount is impossible the test FAILS (it does not skip):
an unchecked promise must not look like a kept one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"cannot mount ({' '.join(args)}): {proc.stderr.strip()}; these tests need root "
            "and mount(8) (a tmpfs stands in for a full disk or read-only media)"
        )


@contextmanager
def tmpfs(path: Path, size_kib: int = 4096) -> Iterator[Path]:
    """Mount a fresh tmpfs of ``size_kib`` at ``path`` (created), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def remount_read_only(path: Path) -> None:
    _mount("-o", "remount,ro", str(path))
    probe = path / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return
    pytest.fail(f"{path} is still writable after remount,ro")


def fill(path: Path, leave_kib: int) -> None:
    """Fill the file system holding ``path`` until ``leave_kib`` KiB stay free."""
    st = os.statvfs(path)
    free_kib = st.f_bavail * st.f_frsize // 1024
    with (path / ".filler").open("wb") as fh:
        for _ in range(max(0, free_kib - leave_kib)):
            fh.write(b"\0" * 1024)
