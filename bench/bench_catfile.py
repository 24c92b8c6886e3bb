"""``cat-file --batch`` of 20,000 ids, each tool over its own store.

    python bench/bench_catfile.py [--runs 5]

The 20,000 x 1 KiB files are ingested once into a ``git init`` repository
(loose objects) and into a steve repository with the default Argon2id
parameters; then each tool prints every object with ``cat-file --batch``
(ids on stdin, output to a regular file).  steve is timed on the
cached-key path (``steve unlock``) and on the passphrase path (Argon2id
included).  git is also shown with ``--buffer``.  The outputs are checked:
every record's content must equal the file it came from.
Goal (issue 2): steve no slower than 1.5x git.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Report,
    Series,
    ensure_bytecode,
    fmt_s,
    git_env,
    git_exe,
    git_init,
    init_steve,
    lock,
    make_small_files,
    run,
    runs_arg,
    steve_env,
    steve_exe,
    table,
    unlock,
    verdict,
    workdir,
)

COUNT = 20_000
SIZE = 1024
GOALS = {"cached": 1.0, "passphrase": 1.2}  # issue 13 (issue 2: 1.5x)


def check_batch_output(out: Path, ids: Path, listing: Path) -> None:
    """Parse ``<id> <type> <size>\\n<content>\\n`` records; content must equal the files."""
    data = out.read_bytes()
    pos = 0
    for oid, path in zip(ids.read_text().split(), listing.read_text().split(), strict=True):
        nl = data.index(b"\n", pos)
        got_id, kind, size = data[pos:nl].decode().split()
        n = int(size)
        if got_id != oid or kind != "blob" or data[nl + 1 + n : nl + 2 + n] != b"\n":
            raise SystemExit(f"{out}: bad record for {oid}")
        if data[nl + 1 : nl + 1 + n] != Path(path).read_bytes():
            raise SystemExit(f"{out}: content of {oid} differs from {path}")
        pos = nl + 2 + n
    if pos != len(data):
        raise SystemExit(f"{out}: trailing bytes")


def make_stores(
    tmp: Path, listing: Path, home: Path, steve: str, env: dict[str, str]
) -> tuple[Path, Path, Path, Path]:
    """A git repository and a STEVE one (default KDF) holding the files of ``listing``,
    and each one's ids file: ``(git, git ids, steve, steve ids)``."""
    g = tmp / "git"
    git_init(g, home)
    gids = tmp / "git.ids"
    run(
        [git_exe(), "hash-object", "-w", "--stdin-paths"],
        cwd=g,
        env=git_env(home),
        stdin=listing,
        stdout=gids,
    )
    s = tmp / "steve"
    init_steve(s, default_kdf=True).close()
    sids = tmp / "steve.ids"
    run(
        [steve, "-C", str(s), "hash-object", "-w", "--stdin-paths"],
        env=env,
        stdin=listing,
        stdout=sids,
    )
    return g, gids, s, sids


def measure(runs: int = 5) -> Report:
    ensure_bytecode()
    steve = steve_exe()
    names = ("git", "git --buffer", "steve (cached key)", "steve (passphrase, Argon2id)")
    series = {n: Series(n) for n in names}
    with workdir("steve-bench-catfile-") as tmp:
        listing = make_small_files(tmp / "files", COUNT, SIZE)
        home = tmp / "home"
        home.mkdir()
        g, gids, s, sids = make_stores(tmp, listing, home, steve, steve_env())
        try:
            commands = {
                "git": ([git_exe(), "cat-file", "--batch"], g, git_env(home), gids),
                "git --buffer": (
                    [git_exe(), "cat-file", "--batch", "--buffer"],
                    g,
                    git_env(home),
                    gids,
                ),
                "steve (cached key)": (
                    [steve, "-C", str(s), "cat-file", "--batch"],
                    None,
                    steve_env(passphrase=False),
                    sids,
                ),
                "steve (passphrase, Argon2id)": (
                    [steve, "-C", str(s), "cat-file", "--batch"],
                    None,
                    steve_env(),
                    sids,
                ),
            }
            for i in range(runs):
                for name, (cmd, cwd, env, ids) in commands.items():
                    # a cached key is used whenever present: drop it for the passphrase path
                    if name == "steve (cached key)":
                        unlock(s)
                    elif name.startswith("steve"):
                        lock(s)
                    out = tmp / "out"
                    series[name].add(run(cmd, cwd=cwd, env=env, stdin=ids, stdout=out))
                    if i == 0:
                        check_batch_output(out, ids, listing)
        finally:
            lock(s)
    git_median = series["git"].median
    rows = []
    goals = []
    for ser in series.values():
        ratio = ser.median / git_median
        cpu_ratio = ser.cpu_median / max(series["git"].cpu_median, 1e-6)
        rows.append(
            [
                ser.name,
                fmt_s(ser.median),
                fmt_s(ser.minimum),
                fmt_s(ser.cpu_median),
                f"{ser.max_rss_mib:.0f}",
                f"{ratio:.2f}x",
                f"{cpu_ratio:.2f}x",
            ]
        )
        if ser.name.startswith("steve"):
            goal = GOALS["cached" if "cached" in ser.name else "passphrase"]
            goals.append(
                (
                    f"4. cat-file --batch 20k, {ser.name}: <= {goal}x git's time",
                    f"{ratio:.2f}x (CPU {cpu_ratio:.2f}x)",
                    verdict(ratio <= goal),
                )
            )
    detail = (
        f"`cat-file --batch < ids > out` over {COUNT:,} blobs of {SIZE} B (each tool its own store: "
        f"git loose objects, steve SQLCipher), median of {runs} runs; output checked against the files.\n\n"
        + table(["tool", "median", "min", "CPU", "peak RSS MiB", "time vs git", "CPU vs git"], rows)
    )
    return Report("cat-file --batch", detail, goals)


def main() -> None:
    report = measure(runs_arg(5))
    print(report.markdown())
    for goal in report.goals:
        print(f"- {goal[0]}: {goal[1]} {goal[2]}")


if __name__ == "__main__":
    main()
