"""What SQLCipher's page format costs for large rows (issue 13, goal 6).

    python bench/bench_pages.py [--chunks 128]

``--chunks`` rows of 1 MiB random bytes are inserted into a fresh database
in transactions of 8 rows (``synchronous=FULL``, then a
``wal_checkpoint(TRUNCATE)`` in WAL mode: STEVE's shape for a chunked
file), then read back with one ``SELECT``; no STEVE code.  Printed as MB per
CPU-second of this process, the figure that stays meaningful on a shared
machine, for SQLCipher as STEVE configures it and for the knobs one could
turn (journal mode, HMAC algorithm, page size, no HMAC, no encryption),
next to AES-256-GCM and BLAKE3 over the same buffers.  See
docs/large-objects.md.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import blake3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlcipher3 import dbapi2 as sqlite

MIB = 1 << 20


def measure(
    rows: int,
    *,
    keyed: bool = True,
    journal: str = "WAL",
    hmac: str | None = None,
    page: int = 4096,
) -> tuple[float, float]:
    """(write, read) MB per CPU-second for ``rows`` rows of 1 MiB."""
    chunks = [os.urandom(MIB) for _ in range(8)]
    key = os.urandom(32)
    d = Path(tempfile.mkdtemp(prefix="steve-bench-pages-", dir=os.environ.get("STEVE_BENCH_TMP")))
    path = d / "pages.db"

    def connect() -> sqlite.Connection:
        c = sqlite.connect(str(path), isolation_level=None)
        if keyed:
            c.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
            c.execute(f"PRAGMA cipher_page_size = {page}")
            if hmac == "off":
                c.execute("PRAGMA cipher_use_hmac = OFF")
            elif hmac:
                c.execute(f"PRAGMA cipher_hmac_algorithm = {hmac}")
        else:
            c.execute(f"PRAGMA page_size = {page}")
        c.execute(f"PRAGMA journal_mode = {journal}")
        c.execute("PRAGMA synchronous = FULL")
        return c

    try:
        c = connect()
        c.execute("CREATE TABLE o (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        cpu = time.process_time()
        for i in range(0, rows, 8):
            c.execute("BEGIN")
            for j in range(min(8, rows - i)):
                c.execute("INSERT INTO o (data) VALUES (?)", (chunks[j],))
            c.execute("COMMIT")
        if journal == "WAL":
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        write = time.process_time() - cpu
        c.close()
        c = connect()
        cpu = time.process_time()
        n = sum(len(r[0]) for r in c.execute("SELECT data FROM o"))
        read = time.process_time() - cpu
        c.close()
        if n != rows * MIB:
            raise SystemExit("read back the wrong number of bytes")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    mb = rows * MIB / 1e6
    return mb / write, mb / read


def main() -> None:
    rows = int(sys.argv[sys.argv.index("--chunks") + 1]) if "--chunks" in sys.argv else 128
    cases: list[tuple[str, dict[str, object]]] = [
        ("SQLCipher as STEVE uses it: WAL, 4 KiB pages, HMAC-SHA512", {}),
        ("the same with journal_mode=DELETE", {"journal": "DELETE"}),
        ("WAL, cipher_hmac_algorithm = HMAC_SHA256", {"hmac": "HMAC_SHA256"}),
        ("WAL, cipher_page_size = 16384", {"page": 16384}),
        ("WAL, 64 KiB pages", {"page": 65536}),
        ("WAL, 4 KiB pages, no HMAC (no integrity)", {"hmac": "off"}),
        ("plain SQLite, no encryption", {"keyed": False}),
    ]
    print(f"{rows} rows of 1 MiB; load average {os.getloadavg()[0]:.1f}\n")
    print("| configuration | write, MB per CPU-second | read, MB per CPU-second |")
    print("|---|---|---|")
    for label, kw in cases:
        w, r = measure(rows, **kw)  # type: ignore[arg-type]
        print(f"| {label} | {w:,.0f} | {r:,.0f} |", flush=True)
    buf = os.urandom(MIB)
    aes = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    cpu = time.process_time()
    for _ in range(rows):
        aes.encrypt(nonce, buf, None)
    enc = rows * MIB / 1e6 / (time.process_time() - cpu)
    cpu = time.process_time()
    for _ in range(rows):
        blake3.blake3(buf).digest()
    h = rows * MIB / 1e6 / (time.process_time() - cpu)
    print(f"| for comparison: AES-256-GCM of 1 MiB buffers | {enc:,.0f} | |")
    print(f"| for comparison: BLAKE3 of 1 MiB buffers, one thread | {h:,.0f} | |")


if __name__ == "__main__":
    main()
