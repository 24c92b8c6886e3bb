"""Before/after for issue 13 goal 4, interleaved in one run: two checkouts of steve.

    python bench/ab_goal4.py ingest|catfile RUNS BEFORE_DIR AFTER_DIR

Each run times git, then both checkouts (``PYTHONPATH`` set to each in turn,
so the installed ``steve`` script runs that tree's code) on the passphrase
path and with the key cached by ``steve unlock``: ``hash-object -w
--stdin-paths`` of 20,000 x 1 KiB files into a fresh repository (default
Argon2id), or ``cat-file --batch`` of their 20,000 ids.  Prints medians of
wall and CPU (user + system of the process) and the ratios to git's; every
output is checked to be the same for both checkouts.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_catfile import make_stores
from bench.common import (
    Run,
    git_env,
    git_exe,
    git_init,
    init_steve,
    lock,
    make_small_files,
    run,
    steve_env,
    steve_exe,
    unlock,
    workdir,
)

COUNT, SIZE = 20_000, 1024


def main() -> None:
    what, runs, before, after = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    trees = {"before": str(Path(before).resolve()), "after": str(Path(after).resolve())}
    for tree in trees.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", f"{tree}/steve"], check=True)
    steve = steve_exe()
    results: dict[str, list[Run]] = {}

    def env(tree: str, passphrase: bool) -> dict[str, str]:
        return dict(steve_env(passphrase=passphrase), PYTHONPATH=trees[tree])

    with workdir("steve-bench-ab-") as tmp:
        listing = make_small_files(tmp / "files", COUNT, SIZE)
        home = tmp / "home"
        home.mkdir()
        reference: bytes | None = None
        if what == "catfile":
            g, gids, s, sids = make_stores(tmp, listing, home, steve, env("before", True))
        for _ in range(runs):
            if what == "ingest":
                g = tmp / "git"
                git_init(g, home)
                results.setdefault("git", []).append(
                    run(
                        [git_exe(), "hash-object", "-w", "--stdin-paths"],
                        cwd=g,
                        env=git_env(home),
                        stdin=listing,
                        stdout=tmp / "out",
                    )
                )
                shutil.rmtree(g)
            else:
                results.setdefault("git", []).append(
                    run(
                        [git_exe(), "cat-file", "--batch"],
                        cwd=g,
                        env=git_env(home),
                        stdin=gids,
                        stdout=tmp / "out",
                    )
                )
            for tree in trees:
                for cached in (False, True):
                    name = f"steve {tree} ({'cached key' if cached else 'passphrase'})"
                    out = tmp / "out"
                    if what == "ingest":
                        root = tmp / "repo"
                        init_steve(root, default_kdf=True).close()
                        cmd = [steve, "-C", str(root), "hash-object", "-w", "--stdin-paths"]
                        stdin = listing
                    else:
                        root, cmd, stdin = s, [steve, "-C", str(s), "cat-file", "--batch"], sids
                    if cached:
                        unlock(root)
                    else:
                        lock(root)
                    try:
                        results.setdefault(name, []).append(
                            run(cmd, env=env(tree, not cached), stdin=stdin, stdout=out)
                        )
                    finally:
                        lock(root)
                    data = out.read_bytes()
                    if reference is None:
                        reference = data
                    elif data != reference:
                        raise SystemExit(f"{name}: output differs")
                    if what == "ingest":
                        shutil.rmtree(root)
    git_wall = statistics.median(r.wall for r in results["git"])
    git_cpu = statistics.median(r.cpu for r in results["git"])
    print(f"{what}, {runs} interleaved runs, medians")
    print("| command | wall | CPU | wall vs git | CPU vs git | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for name, rs in results.items():
        wall = statistics.median(r.wall for r in rs)
        cpu = statistics.median(r.cpu for r in rs)
        rss = max(r.maxrss_kib for r in rs) / 1024
        print(
            f"| {name} | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms | {wall / git_wall:.2f}x "
            f"| {cpu / git_cpu:.2f}x | {rss:.0f} |"
        )


if __name__ == "__main__":
    main()
