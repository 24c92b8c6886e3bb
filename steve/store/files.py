"""Private files outside the databases (the repository config, the signing identity)."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write ``text`` to ``path`` (mode 0600) through a temporary file that is flushed
    to disk and then renamed into place, so a reader sees the old or the new file,
    never half of one.  ``exclusive``: fail with FileExistsError if ``path`` exists
    (the new file is linked in, not renamed over another process's)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, path)
        else:
            tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["write_private"]
