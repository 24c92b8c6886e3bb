"""Strict fast checks for passes over every object (``steve verify``, ``steve fsck``).

The functions here do in a few C-level steps (one regular expression, set and
bytes operations) what :func:`steve.objects.model.tree_entries` and
:func:`~steve.objects.model.inline_blob_length` do byte by byte, for the
shapes almost every stored object has.  They accept only bytes that *are*
the canonical encoding of a valid object, and answer None for anything else
(a rarer shape as well as damage): the caller then takes the slower strict
path, which decides and explains.  ``tests/perf/test_verify_paths.py``
checks with hypothesis that none ever accepts what
:func:`~steve.objects.model.decode_object` refuses.

Loaded only by verify and fsck: compiling the expression costs about a
millisecond that other commands need not pay.
"""

from __future__ import annotations

import re
from operator import itemgetter

from steve.objects.model import _BLOB_HEAD, _BLOB_TAIL, _TREE_HEAD, CHUNK_SIZE, Mode, _head

__all__ = ["BLOB_TAIL", "blob_frame", "tree_children"]


def _hex(data: bytes) -> bytes:
    return b"".join(b"\\x%02x" % c for c in data)


_NAME_MAX = 23
"""Entry names up to this many bytes have a one-byte CBOR header (0x61..0x77);
a tree with a longer name goes the byte-by-byte way."""
_NAME = b"|".join(_hex(bytes([0x60 + n])) + b".{%d}" % n for n in range(1, _NAME_MAX + 1))
_FILE_MODES = b"|".join(_hex(m.to_bytes(2, "big")) for m in Mode if m is not Mode.TREE)
_ENTRY = re.compile(
    # [name, mode, id]: the name's header and bytes (one group), then the id as
    # group 2 for a subtree or group 3 for anything else
    rb"\x83("
    + _NAME
    + rb")\x19(?:"
    + _hex(Mode.TREE.to_bytes(2, "big"))
    + rb"\x58\x20(.{32})|(?:"
    + _FILE_MODES
    + rb")\x58\x20(.{32}))",
    re.DOTALL,
)
_ENTRY_FIXED = 38
"""Bytes of an entry besides its name's header and bytes: 0x83, the mode
(0x19 and 2 bytes), the id (0x58 0x20 and 32 bytes)."""
_RESERVED = frozenset({b"\x61.", b"\x62..", b"\x66.steve"})  # with their headers
_name_of = itemgetter(slice(1, None))


def tree_children(data: bytes) -> tuple[tuple[bytes, ...], tuple[bytes, ...]] | None:
    """The raw ids of the subtrees and of the other entries (files, executables,
    symlinks), each in entry order, of the valid tree whose canonical encoding
    ``data`` is exactly; else None.

    Accepts exactly what :func:`steve.objects.model.tree_entries` accepts for
    trees whose entry names are at most 23 bytes long (shortest-form headers,
    names that are valid UTF-8 without ``/`` or NUL and not ``.``, ``..`` or
    ``.steve``, in strictly increasing byte order, known modes); None says
    nothing about validity.
    """
    if not data.startswith(_TREE_HEAD):
        return None
    try:
        count, at = _head(data, len(_TREE_HEAD), 0x80)
    except IndexError:
        return None
    if count < 0:
        return None
    found = _ENTRY.findall(data, at)
    if len(found) != count:
        return None
    if not found:
        return ((), ()) if at == len(data) else None
    heads, subtrees, others = zip(*found, strict=True)
    # the matches tile the rest exactly (findall searches: a gap means bytes it skipped)
    if sum(map(len, heads)) + _ENTRY_FIXED * count != len(data) - at:
        return None
    if not _RESERVED.isdisjoint(heads):
        return None
    names = list(map(_name_of, heads))
    joined = b"\n".join(names)  # ASCII between names: no multi-byte character spans two
    if b"/" in joined or b"\x00" in joined:
        return None
    if not joined.isascii():
        try:
            joined.decode()
        except UnicodeDecodeError:
            return None
    if sorted(set(names)) != names:  # strictly increasing
        return None
    return tuple(filter(None, subtrees)), tuple(filter(None, others))


BLOB_TAIL = _BLOB_TAIL
"""The last bytes of every inline blob's encoding."""


def blob_frame(size: int) -> tuple[bytes, int] | None:
    """What the canonical encoding of an inline blob of ``size`` content bytes starts
    with (everything before the content) and its total length; None if no inline
    blob has that size.  ``data`` is exactly such an encoding when it has that
    length, starts with that prefix and ends with :data:`BLOB_TAIL`
    (what :func:`steve.objects.model.inline_blob_length` checks, precomputed per
    size)."""
    if type(size) is not int or not 0 <= size <= CHUNK_SIZE:
        return None
    if size < 24:
        header = bytes([0x40 + size])
    elif size < 256:
        header = bytes([0x58, size])
    elif size < 65536:
        header = b"\x59" + size.to_bytes(2, "big")
    else:
        header = b"\x5a" + size.to_bytes(4, "big")
    prefix = _BLOB_HEAD + header
    return prefix, len(prefix) + size + len(_BLOB_TAIL)


_NO_FRAME = (b"", -1)  # no inline blob has this size: no data has this length


class BlobFrames(dict[int, tuple[bytes, int]]):
    """:func:`blob_frame` per size, made on first use (a size no inline blob has
    gets a frame nothing matches).  For passes over many blobs: ``frame =
    frames[size]``, then ``len(data) == frame[1] and data.startswith(frame[0])
    and data.endswith(BLOB_TAIL)``."""

    def __missing__(self, size: int) -> tuple[bytes, int]:
        frame = self[size] = blob_frame(size) or _NO_FRAME
        return frame
