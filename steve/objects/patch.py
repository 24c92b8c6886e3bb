"""Unified diffs: parse, format, reverse, generate and apply, exactly (pure; no I/O).

A model's code change reaches STEVE only as a unified diff, never as code
that runs: :func:`parse_patch` reads it, :func:`apply_changes` applies it to
files looked up by path, and :mod:`steve.porcelain.patch` does the same to a
tree object.  Formats read: ``git diff`` output (``diff --git`` headers with
``new file mode``, ``deleted file mode``, ``old mode``/``new mode``,
``rename from``/``rename to``; ``index`` and ``similarity index`` lines are
read and ignored) and plain ``diff -u`` output (``--- PATH``/``+++ PATH``,
where ``a/``/``b/`` prefixes are stripped when both sides have them and a
tab-separated timestamp is dropped).  Binary patches (``GIT binary patch``,
``Binary files ... differ``) and copies are refused.

The rules are strict, the way ``git apply`` is without ``-C``/``--recount``:

* a hunk holds exactly the lines its header counts (``\\ No newline at end of
  file`` marks the line above it as the file's last, without ``\\n``);
* every context and removed line must equal the file's bytes exactly (no
  fuzz, no whitespace leniency, line endings included);
* a hunk may match *offset* from the line its header names (the nearest
  exact match after the previous hunk wins, like ``git apply``); the offsets
  are reported, never hidden;
* a completely empty line inside a hunk is read as an empty context line
  (``git apply`` does the same: editors strip the lone space);
* text around the file sections (a model's prose, a trailing blank line) is
  ignored, but a hunk line after a hunk's counted lines is an error.

Errors are typed: :class:`~steve.errors.PatchMalformed` (with the diff line),
:class:`~steve.errors.PatchDoesNotApply` (file, hunk number, line),
:class:`~steve.errors.PatchConflict`, :class:`~steve.errors.PatchBinary`,
:class:`~steve.errors.PatchPathUnsafe`, :class:`~steve.errors.PatchEmpty`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from steve.errors import (
    MalformedObject,
    PatchBinary,
    PatchConflict,
    PatchDoesNotApply,
    PatchEmpty,
    PatchMalformed,
    PatchPathUnsafe,
)
from steve.objects.model import Mode, check_entry_name

__all__ = [
    "Applied",
    "FileEntry",
    "FilePatch",
    "Hunk",
    "Line",
    "Patch",
    "apply_changes",
    "apply_files",
    "check_layout",
    "check_path",
    "diff_files",
    "format_patch",
    "parse_patch",
    "reverse_patch",
    "split_lines",
]

Op = Literal[" ", "-", "+"]
NO_NEWLINE = b"\\ No newline at end of file"
_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_FILE_MODES = {m.git.encode(): m for m in (Mode.FILE, Mode.EXECUTABLE, Mode.SYMLINK)}
MAX_LINE_NUMBER = 10**9


@dataclass(frozen=True, slots=True)
class Line:
    """One hunk line: ``op`` and the file's bytes (with ``\\n`` unless it is a last line
    without one)."""

    op: Op
    text: bytes


@dataclass(frozen=True, slots=True)
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[Line, ...]
    section: bytes = b""  # the text after the second ``@@`` (a function name), kept

    @property
    def old_lines(self) -> list[bytes]:
        return [ln.text for ln in self.lines if ln.op != "+"]

    @property
    def new_lines(self) -> list[bytes]:
        return [ln.text for ln in self.lines if ln.op != "-"]


@dataclass(frozen=True, slots=True)
class FilePatch:
    """The change to one file: ``old_path`` None adds it, ``new_path`` None deletes it;
    both set and different renames it.  Modes are None where the diff does not say."""

    old_path: str | None
    new_path: str | None
    old_mode: Mode | None = None
    new_mode: Mode | None = None
    hunks: tuple[Hunk, ...] = ()

    @property
    def path(self) -> str:
        """The path the change leaves (the old one for a deletion)."""
        out = self.new_path if self.new_path is not None else self.old_path
        assert out is not None
        return out

    @property
    def is_add(self) -> bool:
        return self.old_path is None

    @property
    def is_delete(self) -> bool:
        return self.new_path is None


@dataclass(frozen=True, slots=True)
class Patch:
    files: tuple[FilePatch, ...]

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file as a patch sees it: its mode and its bytes."""

    mode: Mode
    data: bytes


@dataclass(frozen=True, slots=True)
class Applied:
    """What :func:`apply_changes` did: path -> new entry (None: deleted), and the
    offsets (path, hunk number, lines) at which hunks matched away from their header."""

    changes: dict[str, FileEntry | None]
    offsets: list[tuple[str, int, int]] = field(default_factory=list)


# --- lines -------------------------------------------------------------------------------


def split_lines(data: bytes) -> list[bytes]:
    """``data`` cut after each ``\\n`` (only ``\\n``: ``\\r`` stays part of a line); the
    last piece lacks ``\\n`` when the data does not end with one."""
    if not data:
        return []
    out = data.split(b"\n")
    last = out.pop()
    lines = [x + b"\n" for x in out]
    if last:
        lines.append(last)
    return lines


# --- paths -------------------------------------------------------------------------------


def _unquote(raw: bytes, lineno: int) -> bytes:
    """A C-style quoted path as git writes it (``"a/x\\ty"``), without the quotes."""
    out = bytearray()
    i = 1
    escapes = {
        ord(k): v for k, v in zip('ntr"\\abfv', (10, 9, 13, 34, 92, 7, 8, 12, 11), strict=True)
    }
    while i < len(raw):
        c = raw[i]
        if c == ord('"'):
            if raw[i + 1 :].strip():
                raise PatchMalformed(lineno, "text after a quoted path")
            return bytes(out)
        if c == ord("\\"):
            nxt = raw[i + 1 : i + 2]
            if nxt and nxt[0] in escapes:
                out.append(escapes[nxt[0]])
                i += 2
                continue
            octal = raw[i + 1 : i + 4]
            if re.fullmatch(rb"[0-3][0-7]{2}", octal):
                out.append(int(octal, 8))
                i += 4
                continue
            raise PatchMalformed(lineno, "bad escape in a quoted path")
        out.append(c)
        i += 1
    raise PatchMalformed(lineno, "unterminated quoted path")


def _quote(path: str) -> bytes:
    raw = path.encode()
    if not any(b < 0x20 or b in (0x22, 0x5C, 0x7F) for b in raw):
        return raw
    out = bytearray(b'"')
    names = {10: b"\\n", 9: b"\\t", 13: b"\\r", 34: b'\\"', 92: b"\\\\"}
    for b in raw:
        if b in names:
            out += names[b]
        elif b < 0x20 or b == 0x7F:
            out += b"\\%03o" % b
        else:
            out.append(b)
    out += b'"'
    return bytes(out)


def check_path(path: str) -> str:
    """``path`` if it names a file inside a tree (relative, no ``.``/``..``/empty
    component, no ``.steve``), else PatchPathUnsafe."""
    if not path:
        raise PatchPathUnsafe(path, "empty path")
    if path.startswith("/"):
        raise PatchPathUnsafe(path, "absolute path")
    for part in path.split("/"):
        if part == "..":
            raise PatchPathUnsafe(path, "'..' leaves the tree")
        try:
            check_entry_name(part)
        except MalformedObject:
            raise PatchPathUnsafe(path, f"{part!r} is not a valid file name") from None
    return path


def _decode_path(raw: bytes, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PatchMalformed(lineno, "a path that is not UTF-8") from None


def _header_path(raw: bytes, lineno: int) -> bytes | None:
    """The path of a ``---``/``+++`` line (after the marker); None for /dev/null."""
    if raw.startswith(b'"'):
        value = _unquote(raw, lineno)
    else:
        value = raw.split(b"\t", 1)[0]
        if value.endswith(b"\r"):
            value = value[:-1]
    if value == b"/dev/null":
        return None
    if not value:
        raise PatchMalformed(lineno, "a file header without a path")
    return value


def _strip(raw: bytes | None, prefix: bytes) -> bytes | None:
    if raw is None:
        return None
    return raw[len(prefix) :] if raw.startswith(prefix) else raw


# --- parsing -------------------------------------------------------------------------------


@dataclass
class _Header:
    """What a ``diff --git`` block's extended headers said."""

    start: int
    git_old: bytes | None = None
    git_new: bytes | None = None
    old_mode: Mode | None = None
    new_mode: Mode | None = None
    added: bool = False
    deleted: bool = False
    rename_from: bytes | None = None
    rename_to: bytes | None = None


def _mode(raw: bytes, lineno: int) -> Mode:
    mode = _FILE_MODES.get(raw.strip())
    if mode is None:
        raise PatchMalformed(lineno, f"unsupported file mode {raw.strip()!r}")
    return mode


def _git_paths(rest: bytes, lineno: int) -> tuple[bytes | None, bytes | None]:
    """The two paths of ``diff --git a/P b/Q`` when they can be told apart."""
    if rest.startswith(b'"'):
        end = 1
        while end < len(rest):
            if rest[end] == ord("\\"):
                end += 2
                continue
            if rest[end] == ord('"'):
                break
            end += 1
        old = _unquote(rest[: end + 1], lineno)
        tail = rest[end + 1 :].lstrip(b" ")
        new = _unquote(tail, lineno) if tail.startswith(b'"') else tail
        return _strip(old, b"a/"), _strip(new, b"b/")
    # unquoted: "a/P b/P" is unambiguous when both names are equal
    n = (len(rest) - 5) // 2
    if n > 0 and rest == b"a/" + rest[2 : 2 + n] + b" b/" + rest[2 : 2 + n]:
        same = rest[2 : 2 + n]
        return same, same
    return None, None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.lines = data.split(b"\n")
        if self.lines and self.lines[-1] == b"":
            self.lines.pop()
        self.i = 0

    @property
    def lineno(self) -> int:
        return self.i + 1

    def peek(self) -> bytes | None:
        return self.lines[self.i] if self.i < len(self.lines) else None

    def take(self) -> bytes:
        line = self.lines[self.i]
        self.i += 1
        return line


def parse_patch(data: bytes) -> Patch:
    """A unified diff as a :class:`Patch` (see the module docstring for the rules)."""
    r = _Reader(data)
    files: list[FilePatch] = []
    while (line := r.peek()) is not None:
        if line.startswith(b"diff --git "):
            files.append(_parse_git_file(r))
        elif line.startswith(b"--- ") and _next_is(r, b"+++ "):
            files.append(_parse_file_body(r, None, git=False))
        elif line.startswith((b"Binary files ", b"GIT binary patch")):
            raise PatchBinary(_decode_path(line, r.lineno))
        elif line.startswith(b"@@ ") or line.startswith(b"+++ "):
            raise PatchMalformed(r.lineno, "a hunk or '+++' line outside a file section")
        elif files and line[:1] in (b"+", b"-", b"\\") and not line.startswith(b"--- "):
            raise PatchMalformed(r.lineno, "a hunk holds more lines than its header counts")
        else:
            r.take()  # prose around the diff
    if not files:
        raise PatchEmpty()
    return Patch(tuple(files))


def _next_is(r: _Reader, prefix: bytes) -> bool:
    return r.i + 1 < len(r.lines) and r.lines[r.i + 1].startswith(prefix)


def _parse_git_file(r: _Reader) -> FilePatch:
    start = r.lineno
    h = _Header(start)
    h.git_old, h.git_new = _git_paths(r.take()[len(b"diff --git ") :], start)
    while (line := r.peek()) is not None:
        n = r.lineno
        if line.startswith(b"new file mode "):
            h.added, h.new_mode = True, _mode(line[14:], n)
        elif line.startswith(b"deleted file mode "):
            h.deleted, h.old_mode = True, _mode(line[18:], n)
        elif line.startswith(b"old mode "):
            h.old_mode = _mode(line[9:], n)
        elif line.startswith(b"new mode "):
            h.new_mode = _mode(line[9:], n)
        elif line.startswith(b"rename from "):
            h.rename_from = _path_value(line[12:], n)
        elif line.startswith(b"rename to "):
            h.rename_to = _path_value(line[10:], n)
        elif line.startswith((b"copy from ", b"copy to ")):
            raise PatchMalformed(n, "copies are not supported (give the new file as an addition)")
        elif line.startswith((b"similarity index ", b"dissimilarity index ", b"index ")):
            pass  # git's blob hashes and rename scores: not needed to apply
        elif line.startswith((b"Binary files ", b"GIT binary patch")):
            raise PatchBinary(_decode_path(h.git_new or h.git_old or b"?", n))
        else:
            break
        r.take()
    return _parse_file_body(r, h, git=True)


def _path_value(raw: bytes, lineno: int) -> bytes:
    return _unquote(raw, lineno) if raw.startswith(b'"') else raw


def _parse_file_body(r: _Reader, h: _Header | None, *, git: bool) -> FilePatch:
    start = r.lineno if h is None else h.start
    old: bytes | None
    new: bytes | None
    first = r.peek()
    if first is not None and first.startswith(b"--- "):
        n = r.lineno
        old_raw = _header_path(r.take()[4:], n)
        nxt = r.peek()
        if nxt is None or not nxt.startswith(b"+++ "):
            raise PatchMalformed(r.lineno, "'---' not followed by '+++'")
        new_raw = _header_path(r.take()[4:], n + 1)
        if git or (
            (old_raw is None or old_raw.startswith(b"a/"))
            and (new_raw is None or new_raw.startswith(b"b/"))
        ):
            old, new = _strip(old_raw, b"a/"), _strip(new_raw, b"b/")
        else:
            old, new = old_raw, new_raw
    elif h is not None:
        old = None if h.added else (h.rename_from or h.git_old)
        new = None if h.deleted else (h.rename_to or h.git_new)
        if (not h.added and old is None) or (not h.deleted and new is None):
            raise PatchMalformed(start, "cannot tell the file's path from the 'diff --git' line")
    else:  # pragma: no cover - the caller saw '---'
        raise PatchMalformed(start, "no file header")
    if h is not None:
        old, new = _check_git_header(h, old, new, start)
    elif old is not None and new is not None and old != new:
        raise PatchMalformed(
            start, "'---' and '+++' name different files (a rename needs a 'diff --git' header)"
        )
    hunks: list[Hunk] = []
    while (line := r.peek()) is not None and line.startswith(b"@@"):
        hunks.append(_parse_hunk(r))
    if old is None and new is None:
        raise PatchMalformed(start, "both sides are /dev/null")
    old_path = None if old is None else check_path(_decode_path(old, start))
    new_path = None if new is None else check_path(_decode_path(new, start))
    fp = FilePatch(
        old_path,
        new_path,
        None if h is None else h.old_mode,
        None if h is None else h.new_mode,
        tuple(hunks),
    )
    _check_counts(fp, start)
    return fp


def _check_git_header(
    h: _Header, old: bytes | None, new: bytes | None, start: int
) -> tuple[bytes | None, bytes | None]:
    if h.added and old is not None:
        raise PatchMalformed(start, "'new file mode' but the old side is not /dev/null")
    if h.deleted and new is not None:
        raise PatchMalformed(start, "'deleted file mode' but the new side is not /dev/null")
    if h.rename_from is not None and old is not None and h.rename_from != old:
        raise PatchMalformed(start, "'rename from' and '---' name different files")
    if h.rename_to is not None and new is not None and h.rename_to != new:
        raise PatchMalformed(start, "'rename to' and '+++' name different files")
    if (h.rename_from is None) != (h.rename_to is None):
        raise PatchMalformed(start, "'rename from' and 'rename to' go together")
    if old is not None and new is not None and old != new and h.rename_from is None:
        raise PatchMalformed(start, "old and new paths differ without 'rename from'/'rename to'")
    return old, new


def _parse_hunk(r: _Reader) -> Hunk:
    n = r.lineno
    m = _HUNK.match(r.take())
    if m is None:
        raise PatchMalformed(n, "a hunk header must read '@@ -L[,N] +L[,N] @@'")
    old_start, new_start = int(m[1]), int(m[3])
    old_count = 1 if m[2] is None else int(m[2])
    new_count = 1 if m[4] is None else int(m[4])
    if max(old_start, new_start, old_count, new_count) > MAX_LINE_NUMBER:
        raise PatchMalformed(n, "line numbers beyond 10^9")
    left_old, left_new = old_count, new_count
    lines: list[Line] = []
    while left_old > 0 or left_new > 0:
        raw = r.peek()
        if raw is None:
            raise PatchMalformed(r.lineno, "the diff ends inside a hunk (fewer lines than counted)")
        op_byte = raw[:1]
        if raw == b"":
            op, text = " ", b"\n"
        elif op_byte in (b" ", b"-", b"+"):
            op, text = op_byte.decode(), raw[1:] + b"\n"
        elif raw.startswith(b"\\"):
            _no_newline(lines, r.lineno)
            r.take()
            continue
        else:
            raise PatchMalformed(r.lineno, "a hunk holds fewer lines than its header counts")
        if op in (" ", "-"):
            left_old -= 1
        if op in (" ", "+"):
            left_new -= 1
        if left_old < 0 or left_new < 0:
            raise PatchMalformed(r.lineno, "a hunk holds more lines than its header counts")
        lines.append(Line(op, text))  # type: ignore[arg-type]
        r.take()
    while (raw := r.peek()) is not None and raw.startswith(b"\\"):
        _no_newline(lines, r.lineno)
        r.take()
    if not any(ln.op != " " for ln in lines):
        raise PatchMalformed(n, "a hunk that changes nothing")
    return Hunk(old_start, old_count, new_start, new_count, tuple(lines), m[5])


def _no_newline(lines: list[Line], lineno: int) -> None:
    if not lines or not lines[-1].text.endswith(b"\n"):
        raise PatchMalformed(lineno, "'\\ No newline at end of file' without a line above it")
    last = lines[-1]
    lines[-1] = Line(last.op, last.text[:-1])


def _check_counts(fp: FilePatch, start: int) -> None:
    """Hunks in order and not overlapping; an added file's hunk starts at 0."""
    prev_end = 0
    for k, h in enumerate(fp.hunks, 1):
        if fp.is_add and (h.old_start, h.old_count) != (0, 0):
            raise PatchMalformed(start, f"hunk {k} of an added file must read '@@ -0,0 ...'")
        if fp.is_delete and (h.new_start, h.new_count) != (0, 0):
            raise PatchMalformed(start, f"hunk {k} of a deleted file must read '+0,0 @@'")
        first = h.old_start if h.old_count == 0 else h.old_start - 1
        if first < prev_end:
            raise PatchMalformed(start, f"hunk {k} overlaps or precedes the hunk before it")
        prev_end = first + h.old_count
        if h.old_count == 0 and h.old_start == 0 and k > 1:
            raise PatchMalformed(start, f"hunk {k} inserts at the top after other hunks")


# --- formatting, reversing, generating ---------------------------------------------------


def format_patch(patch: Patch) -> bytes:
    """``patch`` in ``git diff`` form (what :func:`parse_patch` reads back to it)."""
    out: list[bytes] = []
    for fp in patch.files:
        old = fp.old_path if fp.old_path is not None else fp.new_path
        new = fp.new_path if fp.new_path is not None else fp.old_path
        assert old is not None and new is not None
        out.append(b"diff --git " + _quote("a/" + old) + b" " + _quote("b/" + new) + b"\n")
        if fp.is_add:
            out.append(b"new file mode " + (fp.new_mode or Mode.FILE).git.encode() + b"\n")
        elif fp.is_delete:
            out.append(b"deleted file mode " + (fp.old_mode or Mode.FILE).git.encode() + b"\n")
        else:
            if fp.old_mode is not None:
                out.append(b"old mode " + fp.old_mode.git.encode() + b"\n")
            if fp.new_mode is not None:
                out.append(b"new mode " + fp.new_mode.git.encode() + b"\n")
            if old != new:
                out.append(b"rename from " + _quote(old) + b"\n")
                out.append(b"rename to " + _quote(new) + b"\n")
        if fp.hunks:
            out.append(b"--- " + (b"/dev/null" if fp.is_add else _quote("a/" + old)) + b"\n")
            out.append(b"+++ " + (b"/dev/null" if fp.is_delete else _quote("b/" + new)) + b"\n")
        for h in fp.hunks:
            out.append(
                b"@@ -%d,%d +%d,%d @@%s\n"
                % (h.old_start, h.old_count, h.new_start, h.new_count, h.section)
            )
            for ln in h.lines:
                out.append(ln.op.encode() + ln.text)
                if not ln.text.endswith(b"\n"):
                    out.append(b"\n" + NO_NEWLINE + b"\n")
    return b"".join(out)


_SWAP: dict[Op, Op] = {" ": " ", "-": "+", "+": "-"}


def reverse_patch(patch: Patch) -> Patch:
    """The patch that undoes ``patch`` (files in reverse order, sides swapped)."""
    files = []
    for fp in reversed(patch.files):
        hunks = tuple(
            Hunk(
                h.new_start,
                h.new_count,
                h.old_start,
                h.old_count,
                _reverse_lines(h.lines),
                h.section,
            )
            for h in fp.hunks
        )
        files.append(FilePatch(fp.new_path, fp.old_path, fp.new_mode, fp.old_mode, hunks))
    return Patch(tuple(files))


def _reverse_lines(lines: Sequence[Line]) -> tuple[Line, ...]:
    """Swap + and -, keeping removed lines before added ones in each change block."""
    out: list[Line] = []
    block_minus: list[Line] = []
    block_plus: list[Line] = []

    def flush() -> None:
        out.extend(block_minus)
        out.extend(block_plus)
        block_minus.clear()
        block_plus.clear()

    for ln in lines:
        if ln.op == " ":
            flush()
            out.append(ln)
        elif ln.op == "+":
            block_minus.append(Line("-", ln.text))
        else:
            block_plus.append(Line("+", ln.text))
    flush()
    return tuple(out)


def _is_binary(data: bytes) -> bool:
    return b"\x00" in data


def diff_files(
    old: Mapping[str, FileEntry], new: Mapping[str, FileEntry], *, context: int = 3
) -> Patch:
    """The patch that turns ``old`` into ``new`` (paths sorted; no rename detection).
    A file holding a NUL byte on either side raises PatchBinary."""
    files: list[FilePatch] = []
    for path in sorted(set(old) | set(new), key=lambda p: p.encode()):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        for side in (a, b):
            if side is not None and _is_binary(side.data):
                raise PatchBinary(path)
        a_lines = split_lines(a.data) if a is not None else []
        b_lines = split_lines(b.data) if b is not None else []
        hunks = tuple(_hunks(a_lines, b_lines, context))
        if a is None:
            assert b is not None
            files.append(FilePatch(None, path, None, b.mode, hunks))
        elif b is None:
            files.append(FilePatch(path, None, a.mode, None, hunks))
        else:
            modes = (a.mode, b.mode) if a.mode != b.mode else (None, None)
            files.append(FilePatch(path, path, modes[0], modes[1], hunks))
    return Patch(tuple(files))


def _hunks(a: list[bytes], b: list[bytes], context: int) -> Iterator[Hunk]:
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        i1, i2 = group[0][1], group[-1][2]
        j1, j2 = group[0][3], group[-1][4]
        lines: list[Line] = []
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                lines.extend(Line(" ", t) for t in a[x1:x2])
                continue
            lines.extend(Line("-", t) for t in a[x1:x2])
            lines.extend(Line("+", t) for t in b[y1:y2])
        old_count, new_count = i2 - i1, j2 - j1
        yield Hunk(
            i1 + 1 if old_count else i1,
            old_count,
            j1 + 1 if new_count else j1,
            new_count,
            tuple(lines),
        )


# --- applying ------------------------------------------------------------------------------


def _find(lines: Sequence[bytes], want: Sequence[bytes], expected: int, lo: int) -> int | None:
    """The position nearest ``expected`` (not before ``lo``) where ``want`` matches
    exactly; an empty ``want`` matches only at ``expected``."""
    n, k = len(lines), len(want)
    if k == 0:
        return expected if lo <= expected <= n else None
    hi = n - k
    if hi < lo:
        return None
    first = want[0]
    start = min(max(expected, lo), hi)
    for delta in range(0, max(start - lo, hi - start) + 1):
        for p in (start - delta, start + delta) if delta else (start,):
            if lo <= p <= hi and lines[p] == first and list(lines[p : p + k]) == list(want):
                return p
    return None


def apply_hunks(data: bytes, hunks: Sequence[Hunk], path: str) -> tuple[bytes, list[int]]:
    """``data`` with ``hunks`` applied; (new bytes, offset per hunk)."""
    lines = split_lines(data)
    out: list[bytes] = []
    pos = 0
    drift = 0
    offsets: list[int] = []
    for k, h in enumerate(hunks, 1):
        want_old = h.old_lines
        stated = h.old_start if h.old_count == 0 else h.old_start - 1
        found = _find(lines, want_old, stated + drift, pos)
        if found is None:
            raise PatchDoesNotApply(path, k, h.old_start, _mismatch(lines, want_old, stated))
        offsets.append(found - stated)
        drift = found - stated
        out.extend(lines[pos:found])
        out.extend(h.new_lines)
        pos = found + len(want_old)
    out.extend(lines[pos:])
    for i, line in enumerate(out[:-1]):
        if not line.endswith(b"\n"):
            raise PatchDoesNotApply(
                path, len(hunks), i + 1, "a line without a newline would end up mid-file"
            )
    return b"".join(out), offsets


def _mismatch(lines: Sequence[bytes], want: Sequence[bytes], at: int) -> str:
    """Why ``want`` does not match at ``at``: the first differing line."""
    if at > len(lines):
        return f"the file has {len(lines)} lines"
    for i, expected in enumerate(want):
        got = lines[at + i] if at + i < len(lines) else None
        if got != expected:
            shown = "end of file" if got is None else repr(got[:80])
            return (
                f"line {at + i + 1} is {shown}, the patch expects {expected[:80]!r} "
                "(and no exact match was found elsewhere)"
            )
    return "no exact match for the hunk's context and removed lines"


Lookup = Callable[[str], FileEntry | None]


def apply_changes(patch: Patch, lookup: Lookup) -> Applied:
    """Apply ``patch`` to the files ``lookup`` returns by path (None: no such file),
    file patches in order; returns the changed paths' new entries (None: deleted)."""
    changes: dict[str, FileEntry | None] = {}
    offsets: list[tuple[str, int, int]] = []

    def current(path: str) -> FileEntry | None:
        return changes[path] if path in changes else lookup(path)

    for fp in patch.files:
        if fp.is_add:
            path = fp.path
            if current(path) is not None:
                raise PatchConflict(path, "the patch adds a file that already exists")
            data, offs = apply_hunks(b"", fp.hunks, path)
            changes[path] = FileEntry(fp.new_mode or Mode.FILE, data)
        else:
            assert fp.old_path is not None
            entry = current(fp.old_path)
            if entry is None:
                raise PatchConflict(fp.old_path, "the patch changes a file that does not exist")
            if fp.old_mode is not None and fp.old_mode != entry.mode:
                raise PatchConflict(
                    fp.old_path,
                    f"the patch expects mode {fp.old_mode.git}, the file has {entry.mode.git}",
                )
            data, offs = apply_hunks(entry.data, fp.hunks, fp.old_path)
            if fp.is_delete:
                if data:
                    raise PatchDoesNotApply(
                        fp.old_path,
                        len(fp.hunks),
                        1,
                        "the file is deleted but the patch leaves lines of it",
                    )
                changes[fp.old_path] = None
                path = fp.old_path
            else:
                path = fp.path
                if path != fp.old_path:
                    if current(path) is not None:
                        raise PatchConflict(path, "the patch renames onto an existing file")
                    changes[fp.old_path] = None
                changes[path] = FileEntry(fp.new_mode or entry.mode, data)
        offsets.extend((path, k, off) for k, off in enumerate(offs, 1) if off)
    return Applied(changes, offsets)


def apply_files(patch: Patch, files: Mapping[str, FileEntry]) -> dict[str, FileEntry]:
    """``files`` with ``patch`` applied (a new mapping; directory/file clashes refused)."""
    applied = apply_changes(patch, files.get)
    out = dict(files)
    for path, entry in applied.changes.items():
        if entry is None:
            out.pop(path, None)
        else:
            out[path] = entry
    check_layout(out)
    return out


def check_layout(paths: Mapping[str, object] | Sequence[str]) -> None:
    """PatchConflict if a path is also a directory of another path (``a`` and ``a/b``)."""
    names = set(paths)
    for p in names:
        parts = p.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in names:
                raise PatchConflict(p, f"{prefix!r} is a file, not a directory")
