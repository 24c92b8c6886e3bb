"""Hand-made git objects and packs that lie: zip bombs, huge declared sizes,
expanding deltas, deep delta chains (for the bounded reader's tests)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from dulwich.pack import write_pack_index

from steve.gitbridge.pack import entry_header as entry_header  # re-exported for the tests


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        c = n & 0x7F
        n >>= 7
        if n:
            out.append(c | 0x80)
        else:
            out.append(c)
            return bytes(out)


def ofs_encoding(back: int) -> bytes:
    out = [back & 0x7F]
    back >>= 7
    while back:
        back -= 1
        out.append(0x80 | (back & 0x7F))
        back >>= 7
    return bytes(reversed(out))


def fake_sha(i: int) -> bytes:
    return hashlib.sha1(b"hostile %d" % i).digest()


def write_pack(pack_dir: Path, entries: list[tuple[bytes, bytes]]) -> None:
    """A pack of (sha, raw entry bytes), indexed under the given (possibly fake) ids."""
    body = bytearray(b"PACK" + struct.pack(">LL", 2, len(entries)))
    index = []
    for sha, raw in entries:
        index.append((sha, len(body), zlib.crc32(raw)))
        body += raw
    checksum = hashlib.sha1(body).digest()
    body += checksum
    base = pack_dir / f"pack-{checksum.hex()}"
    base.with_suffix(".pack").write_bytes(bytes(body))
    with base.with_suffix(".idx").open("wb") as f:
        write_pack_index(f, sorted(index), checksum, version=2)


def zeros(total: int, block: int = 1 << 20) -> Iterator[bytes]:
    zero = bytes(block)
    while total > 0:
        yield zero[: min(block, total)]
        total -= block


def write_loose(objects: Path, kind: bytes, chunks: Iterator[bytes], size: int) -> bytes:
    """A loose object streamed to disk (a zip bomb of zeros compresses 1000:1); its id."""
    header = kind + b" %d\0" % size
    h = hashlib.sha1(header)
    comp = zlib.compressobj(9)
    tmp = objects / "tmp-loose"
    with tmp.open("wb") as f:
        f.write(comp.compress(header))
        for chunk in chunks:
            h.update(chunk)
            f.write(comp.compress(chunk))
        f.write(comp.flush())
    sha = h.digest()
    dest = objects / sha.hex()[:2] / sha.hex()[2:]
    dest.parent.mkdir(exist_ok=True)
    tmp.rename(dest)
    return sha
