"""Run ``python -m steve`` with a pseudo-terminal as its standard error (and, if asked,
standard output), as a person at a terminal would; what it drew is read back.

The child is a real subprocess; the pty is 120 columns wide and TERM is xterm,
so rich draws its live display as it would for a user.  Standard output goes
to a file (or the same pty), so the command's results can be compared byte
for byte with a run without a terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass
from pathlib import Path

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass
class PtyResult:
    code: int
    stdout: bytes
    terminal: bytes
    """Everything written to the pty (stderr, and stdout with ``stdout_tty``)."""

    @property
    def text(self) -> str:
        """The terminal's bytes without escape sequences (what the eye reads)."""
        return ANSI.sub(b"", self.terminal).decode("utf-8", "replace")


def run_in_pty(
    args: list[str],
    env: dict[str, str],
    tmp: Path,
    *,
    stdin: bytes | None = None,
    stdout_tty: bool = False,
    timeout: float = 600,
) -> PtyResult:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.setdefault("STEVE_PROGRESS_DELAY", "0")  # draw at once, however short the command
    for var in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE"):
        env.pop(var, None)
    out_path = tmp / f"stdout-{os.getpid()}-{id(args)}"
    in_path = tmp / f"stdin-{os.getpid()}-{id(args)}"
    in_path.write_bytes(stdin or b"")
    try:
        with out_path.open("wb") as out, in_path.open("rb") as inp:
            proc = subprocess.Popen(
                [sys.executable, "-m", "steve", *args],
                stdin=inp,
                stdout=slave if stdout_tty else out,
                stderr=slave,
                env=env,
            )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: every writer closed the pty
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=timeout)
    finally:
        os.close(master)
    stdout = out_path.read_bytes()
    out_path.unlink()
    in_path.unlink()
    return PtyResult(code, stdout, b"".join(chunks))


def run_plain(
    args: list[str], env: dict[str, str], *, stdin: bytes | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[bytes]:
    """The same command with pipes (no terminal anywhere)."""
    return subprocess.run(
        [sys.executable, "-m", "steve", *args],
        input=stdin or b"",
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )
