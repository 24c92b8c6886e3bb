"""The repository lock: an advisory ``flock(2)`` on the ``.steve`` directory itself.

Every open repository holds it *shared* for as long as it is open; `steve
rekey` holds it *exclusive*, so it never swaps the database files under a
process that has them open, and a process that opens the repository during a
rekey waits for it to finish and then reads the new config.  No lock file is
created: the lock is on the directory's own inode, and the kernel drops it
when the holder exits, however it exits (SIGKILL included).

SQLite's own write lock stays the single-writer lock (``BEGIN IMMEDIATE``);
this lock only keeps whole-repository operations apart from everything else.
A file system without ``flock`` support is used unlocked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from steve.errors import RepositoryBusy, RepositoryInUse

_POLL = 0.01  # seconds between attempts while waiting


class DirLock:
    """A held shared or exclusive lock on a directory.  Use :meth:`acquire`."""

    def __init__(self, fd: int | None, path: Path, exclusive: bool) -> None:
        self._fd = fd
        self.path = path
        self.exclusive = exclusive

    @classmethod
    def acquire(cls, directory: Path, *, exclusive: bool, timeout: float) -> DirLock:
        """Wait up to ``timeout`` seconds for the lock: RepositoryInUse (exclusive) or
        RepositoryBusy (shared, behind a rekey) when it is not obtained in time."""
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            from steve.errors import CannotOpenDatabase

            raise CannotOpenDatabase(str(directory), exc.strerror or str(exc)) from exc
        op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, op | fcntl.LOCK_NB)
                return cls(fd, directory, exclusive)
            except OSError as exc:
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    os.close(fd)  # no flock here (some network file systems): unlocked
                    return cls(None, directory, exclusive)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                if exclusive:
                    raise RepositoryInUse(str(directory), timeout)
                raise RepositoryBusy(str(directory), timeout)
            time.sleep(_POLL)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the only descriptor drops the flock

    def __enter__(self) -> DirLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


__all__ = ["DirLock"]
