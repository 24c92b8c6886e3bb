"""Child processes for the flood and crash tests (run as ``python -m tests.events.children``).

``flood PATH KEYHEX N THREADS``: append N events from THREADS producers, flush,
verify, print one JSON line with the count, the verdict and the peak RSS.

``crash PATH KEYHEX``: emit from 4 producer threads forever; after every
flush print ``ack TOTAL`` (TOTAL events of this process are committed).
The parent SIGKILLs it at a random moment.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path

from steve.events import EventLog, Rotation


def peak_rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def flood(path: Path, key: bytes, n: int, threads: int) -> None:
    start = time.perf_counter()
    log = EventLog(path, key, correlation_id="flood", actor="flood")
    per = n // threads

    def produce(worker: int) -> None:
        for i in range(per):
            log.emit("flood.tick", {"w": worker, "i": i}, run_id=f"run{worker}")

    workers = [threading.Thread(target=produce, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    committed = log.flush()
    appended = time.perf_counter()
    report = log.verify()
    count = log.store().count()
    per_worker = []
    with log.store().raw_connection() as conn:
        for w in range(threads):
            row = conn.execute(
                "SELECT max(seq) FROM events WHERE run_id = ?", (f"run{w}",)
            ).fetchone()
            (event,) = log.events(run_id=f"run{w}", from_seq=row[0])
            per_worker.append(event.payload["i"])
    log.close()
    print(
        json.dumps(
            {
                "committed": committed,
                "count": count,
                "verified": report.events,
                "ok": report.ok,
                "segments": report.segments,
                "rss_mib": peak_rss_mib(),
                "append_s": appended - start,
                "verify_s": time.perf_counter() - appended,
                "last_i": per_worker,
            }
        ),
        flush=True,
    )


def crash(path: Path, key: bytes) -> None:
    log = EventLog(path, key, batch_size=256, queue_size=1024, rotation=Rotation(max_events=3000))
    stop = threading.Event()

    def produce(worker: int) -> None:
        i = 0
        while not stop.is_set():
            log.emit("crash.tick", {"w": worker, "i": i, "pad": b"p" * (i % 200)})
            i += 1

    workers = [threading.Thread(target=produce, args=(w,), daemon=True) for w in range(4)]
    for w in workers:
        w.start()
    while True:
        time.sleep(0.01)
        total = log.flush()
        sys.stdout.write(f"ack {total}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    mode, db, key_hex = sys.argv[1], Path(sys.argv[2]), bytes.fromhex(sys.argv[3])
    if mode == "flood":
        flood(db, key_hex, int(sys.argv[4]), int(sys.argv[5]))
    else:
        crash(db, key_hex)
