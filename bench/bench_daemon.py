"""steved: idle and flood RSS, round trips through the daemon against direct, requests/s.

    python bench/bench_daemon.py [--runs 15] [--flood 1000000] [--seconds 5]

Makes a repository with the default Argon2id parameters (what a user gets),
starts steved on it, and prints a markdown report:

- steved's RSS (VmRSS from /proc) idle, and its peak while FLOOD events are
  appended through it in batches of 5,000 while 4 clients query it;
- the wall time of the `steve` CLI (a fresh process each run, medians):
  `steve ping`, and `steve cat-file -t ID` through the daemon, directly with
  the passphrase (Argon2id per command), and directly with the key cached by
  `steve unlock` (kernel keyring);
- one protocol round trip in-process (`ping`, `run cat-file -t`);
- requests per second with 1, 8 and 50 concurrent clients (each a thread
  with its own connection running `cat-file -t ID` through the daemon).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from steve.daemon.client import Client  # noqa: E402
from steve.repo import Repo  # noqa: E402

PASSPHRASE = "bench passphrase"


def env(repo: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    e.update(STEVE_PASSPHRASE=PASSPHRASE, STEVE_DIR=str(repo), PYTHONPATH=str(ROOT))
    return e


def timed(argv: list[str], e: dict[str, str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(argv, env=e, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"{argv}: {r.stderr.decode()}")
    return statistics.median(times), min(times)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--flood", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    steve = [sys.executable, "-m", "steve.cli.main"]
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        repo = Path(tmp) / "r"
        Repo.init(repo, passphrase=PASSPHRASE).close()  # default Argon2id
        e = env(repo)
        oid = (
            subprocess.run(
                [*steve, "hash-object", "-w", "--stdin"],
                input=b"bench\n",
                env=e,
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        direct_pass = timed([*steve, "cat-file", "-t", oid], e, args.runs)
        subprocess.run([*steve, "unlock", "--ttl", "10m"], env=e, capture_output=True, check=True)
        direct_cached = timed([*steve, "cat-file", "-t", oid], e, args.runs)
        subprocess.run([*steve, "lock"], env=e, capture_output=True, check=True)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "steve.cli.serve",
                "--repo",
                str(repo),
                "--log-level",
                "warning",
            ],
            env=e,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(b"ready ")
        sock = repo / ".steve" / "steved.sock"
        try:
            time.sleep(1.0)
            idle = rss_kib(proc.pid)
            ping_cli = timed([*steve, "ping"], e, args.runs)
            through = timed(
                [*steve, "cat-file", "-t", oid], e, args.runs
            )  # no cached key: forwarded
            with Client(sock) as c:
                pings, runs_ = [], []
                for _ in range(200):
                    t0 = time.perf_counter()
                    c.call("ping")
                    pings.append(time.perf_counter() - t0)
                for _ in range(50):
                    t0 = time.perf_counter()
                    c.run(
                        ["cat-file", "-t", oid],
                        cwd=str(repo),
                        env={},
                        stdin=None,
                        write=lambda fd, d: None,
                    )
                    runs_.append(time.perf_counter() - t0)
            rates = {}
            for n in (1, 8, 50):
                count = [0] * n
                stop = threading.Event()

                def client(i: int, count: list[int] = count, stop: threading.Event = stop) -> None:
                    with Client(sock, timeout=60) as c:
                        while not stop.is_set():
                            c.run(
                                ["cat-file", "-t", oid],
                                cwd=str(repo),
                                env={},
                                stdin=None,
                                write=lambda fd, d: None,
                            )
                            count[i] += 1

                threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                time.sleep(args.seconds)
                stop.set()
                for t in threads:
                    t.join()
                rates[n] = sum(count) / (time.perf_counter() - t0)
            peak = [0]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_kib(proc.pid))
                    time.sleep(0.05)

            def query() -> None:
                with Client(sock, timeout=60) as c:
                    while not done.is_set():
                        c.call("status")
                        time.sleep(0.01)

            side = [
                threading.Thread(target=sample),
                *(threading.Thread(target=query) for _ in range(4)),
            ]
            for t in side:
                t.start()
            t0 = time.perf_counter()
            with Client(sock, timeout=None) as c:
                for start in range(0, args.flood, 5000):
                    c.append(
                        "bench.flood",
                        [{"i": i} for i in range(start, min(start + 5000, args.flood))],
                    )
            flood_s = time.perf_counter() - t0
            done.set()
            for t in side:
                t.join()
            verify_t0 = time.perf_counter()
            v = subprocess.run(
                [*steve, "events", "verify"], env=e, capture_output=True, check=False
            )
            verify_s = time.perf_counter() - verify_t0
        finally:
            proc.terminate()
            proc.wait(60)
    ms = lambda t: f"{t * 1000:.0f} ms"  # noqa: E731
    print(f"load average: {os.getloadavg()[0]:.1f} (2 cores, shared)\n")
    print("| measure | median | min | goal |\n|---|---|---|---|")
    print(f"| steved idle RSS | {idle / 1024:.1f} MiB | | < 48 MiB |")
    print(
        f"| steved peak RSS, {args.flood:,} events + 4 querying clients | {peak[0] / 1024:.1f} MiB | | < 96 MiB |"
    )
    print(
        f"| flood: {args.flood:,} events appended through steved | {flood_s:.1f} s ({args.flood / flood_s:,.0f}/s) | | |"
    )
    print(
        f"| `steve events verify` after the flood | exit {v.returncode}, {verify_s:.1f} s | | chain verifies |"
    )
    print(f"| `steve ping` (CLI process) | {ms(ping_cli[0])} | {ms(ping_cli[1])} | |")
    print(
        f"| `steve cat-file -t` through steved | {ms(through[0])} | {ms(through[1])} | faster than direct |"
    )
    print(
        f"| `steve cat-file -t` direct, passphrase (Argon2id) | {ms(direct_pass[0])} | {ms(direct_pass[1])} | |"
    )
    print(
        f"| `steve cat-file -t` direct, key cached (`steve unlock`) | {ms(direct_cached[0])} | {ms(direct_cached[1])} | |"
    )
    print(
        f"| protocol round trip: ping | {statistics.median(pings) * 1e6:.0f} us | {min(pings) * 1e6:.0f} us | |"
    )
    print(
        f"| protocol round trip: run cat-file -t | {statistics.median(runs_) * 1000:.1f} ms | {min(runs_) * 1000:.1f} ms | |"
    )
    for n, r in rates.items():
        print(f"| requests/s, {n} client{'s' if n > 1 else ''} (run cat-file -t) | {r:,.0f} | | |")


if __name__ == "__main__":
    main()
