"""The click-free pieces of the CLI shell: what :mod:`steve.cli.app` and the start-up
fast path (:mod:`steve.cli.fast`) share without importing click (start-up time)."""

from __future__ import annotations

import io
import os
import stat
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from steve.objects.summary import HeadRow
    from steve.porcelain.log import Graph
    from steve.refs.refs import Identity

LOG_BLOCK = 1024
"""Lines joined into one write by ``steve log`` when stdout is not a terminal."""


def is_terminal(stream: BinaryIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False


def is_regular_file(stream: BinaryIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False


class BlockWriter:
    """Collects output into blocks written with one call each.

    Python's stdout may be unbuffered (``PYTHONUNBUFFERED``), which costs a
    system call per line on long listings.  Output is written in blocks of
    ``block`` bytes; with ``flush_each`` every record (:meth:`end`) is
    flushed at once, for a terminal or a process driving us through a pipe.
    """

    def __init__(self, stream: BinaryIO, *, flush_each: bool, block: int = 1 << 16) -> None:
        self._stream = stream
        self._flush_each = flush_each
        self._block = block
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)
        if self._size >= self._block:
            self.flush()

    def end(self) -> None:
        """A record is complete: flush it now if records are flushed one by one."""
        if self._flush_each:
            self.flush()

    def line(self, data: bytes) -> None:
        self.write(data + b"\n")
        self.end()

    def flush(self) -> None:
        if self._parts:
            view = memoryview(b"".join(self._parts))
            self._parts.clear()
            self._size = 0
            while view:  # a raw (unbuffered) stdout may take less per call
                n = self._stream.write(view)
                view = view[n or 0 :]
        self._stream.flush()


def identity() -> Identity:
    from steve.refs.refs import Identity

    name = os.environ.get("STEVE_AUTHOR_NAME") or _user()
    email = os.environ.get("STEVE_AUTHOR_EMAIL") or f"{_user()}@{os.uname().nodename}"
    return Identity(name, email)


def _user() -> str:
    """The login name, as ``getpass.getuser`` finds it (without importing getpass,
    which every command would pay for at start-up)."""
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if value := os.environ.get(var):
            return value
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def write_log(
    rows: Iterable[HeadRow],
    render: Callable[[HeadRow], str],
    out: BlockWriter,
    each: bool,
    drawer: Graph | None = None,
) -> None:
    """``steve log``'s output: each row rendered (with ``drawer``'s lanes on the left),
    the first line flushed before the walk goes on, then blocks of :data:`LOG_BLOCK`
    lines (each line flushed when ``each``: a terminal)."""
    lines: list[str] = []

    def write_lines() -> None:
        if lines:
            lines.append("")
            out.write("\n".join(lines).encode("utf-8", "surrogateescape"))
            lines.clear()

    first = True
    for row in rows:
        text = render(row)
        if drawer is not None:
            from steve.porcelain.history import entry_of

            drawn = drawer.rows(entry_of(row))
            first_line, *more = text.split("\n")
            text = "\n".join(
                [drawn.mark + first_line, *(drawn.pad + m for m in more), *drawn.after]
            )
        lines.append(text)
        # the first line goes out before the walk ends; then blocks of lines
        if each or first or len(lines) >= LOG_BLOCK:
            write_lines()
            if first:
                out.flush()
                first = False
            out.end()
    write_lines()
    out.flush()
