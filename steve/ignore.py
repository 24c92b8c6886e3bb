"""``.steveignore``: which paths ``write-tree`` leaves out, with gitignore semantics.

A ``.steveignore`` file in any directory of the snapshot holds gitignore
patterns (the :mod:`pathspec` library's ``GitIgnoreSpec``: ``*.log``,
``build/``, ``/anchored``, ``**``, ``!negation``, ``#`` comments) relative
to that directory.  The deepest file with a matching pattern decides, and a
directory left out is not entered (so nothing below it can be re-included),
exactly as git does.  ``pathspec`` is imported only when a snapshot holds
an ignore file, so commands that never meet one do not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from steve.errors import BadIgnoreFile

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

IGNORE_FILE = ".steveignore"
ALWAYS_SKIPPED = frozenset({".git", ".steve"})
MAX_IGNORE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class IgnoreRules:
    """The ignore files in force in one directory: (their directory relative to
    the snapshot's root, as ``a/b/`` or ``""``, their patterns), outermost first."""

    specs: tuple[tuple[str, GitIgnoreSpec], ...] = ()

    def entering(self, directory: Path, rel: str) -> IgnoreRules:
        """The rules inside ``directory`` (``rel`` from the root, ``""`` or ``a/b/``)."""
        spec = load_ignore_file(directory / IGNORE_FILE)
        return self if spec is None else IgnoreRules((*self.specs, (rel, spec)))

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` (a path from the root, no trailing slash) is left out."""
        for base, spec in reversed(self.specs):
            sub = rel[len(base) :] + ("/" if is_dir else "")
            include = spec.check_file(sub).include
            if include is not None:
                return include
        return False


def load_ignore_file(path: Path) -> GitIgnoreSpec | None:
    """The patterns of the ignore file at ``path`` (None: there is no such file)."""
    try:
        if not path.is_file():
            return None
        with path.open("rb") as fh:
            data = fh.read(MAX_IGNORE_BYTES + 1)
    except OSError as exc:
        raise BadIgnoreFile(str(path), exc.strerror or str(exc)) from exc
    if len(data) > MAX_IGNORE_BYTES:
        raise BadIgnoreFile(str(path), f"larger than {MAX_IGNORE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadIgnoreFile(str(path), f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    from pathspec import GitIgnoreSpec  # heavy (60 ms): only when an ignore file exists

    try:
        # the pure-Python backend: the re2 one pathspec prefers when google-re2 is
        # installed (STEVE's redactor needs it) cannot match non-UTF-8 file names
        return GitIgnoreSpec.from_lines(text.splitlines(), backend="simple")
    except ValueError as exc:  # GitWildMatchPatternError
        raise BadIgnoreFile(str(path), str(exc)) from None
