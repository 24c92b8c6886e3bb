"""``steve export-git`` of a 10,000-manifest history vs ``git fast-import`` of the same commits.

    python bench/bench_export.py [--runs 5] [--count 10000]

The STEVE history is built through the library (BatchWriter, fast KDF):
design-like manifests of about 600 bytes, each the child of the previous one,
every 50th also merging the one 25 steps back; ``refs/heads/main`` at the tip.
From it a ``git fast-import`` stream with the same content is generated (not
timed): per manifest a blob of ``manifest.json``, a blob of the stored
``manifest.cbor``, and a commit with the same author, committer, dates,
message and parents.  The first run checks that both tips are the same git
commit id, so the two sides really build the same objects.

Per run, alternating, in the same run of the script:

- ``steve export-git OUT --bare`` into a missing directory (the ``git-map``
  is cleared first, so every timed run is a first export);
- the same command again (nothing new: writes nothing);
- ``git fast-import --quiet`` of the stream into a fresh bare repository.

Goals (issue 13): first export within 1.5x of ``git fast-import``; re-export
with nothing new under 100 ms beyond start-up (``steve cat-file -t TIP`` on
the same repository, timed in the same runs); steve's peak RSS under 200
MiB (GNU time ``%M`` of the steve process; issue 4).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PASSPHRASE,
    Report,
    Series,
    ensure_bytecode,
    fast_kdf,
    fmt_s,
    git_env,
    git_exe,
    run,
    runs_arg,
    steve_env,
    steve_exe,
    table,
    verdict,
    workdir,
)
from steve.gitbridge.layout import EXPORT_IDENTITY, GIT_MAP, commit_message, manifest_json
from steve.objects.model import Manifest, ObjectType, hash_object
from steve.objects.oid import ObjectId
from steve.repo import Repo

T0 = 1_600_000_000
GOAL_RATIO = 1.5  # issue 13 (issue 4: 2x)
GOAL_REEXPORT = 0.1  # issue 13: seconds of work beyond start-up (issue 4: 1 s in all)
GOAL_RSS_MIB = 200


def count_arg(default: int) -> int:
    if "--count" in sys.argv:
        return int(sys.argv[sys.argv.index("--count") + 1])
    return default


def body(i: int) -> dict[str, object]:
    return {
        "project_id": "bench",
        "name": f"step {i}",
        "created_at": T0 + i,
        "intent": {
            "summary": f"manifest number {i} of the export benchmark",
            "detailed": "A design-like body of realistic size. " * 8,
        },
        "constraints": [
            {"id": f"C-{j:03d}", "type": "Functional", "description": f"rule {j}", "hard": j == 0}
            for j in range(3)
        ],
        "axioms": ["C-000"],
        "human_approved": i % 2 == 0,
    }


def build_history(root: Path, count: int) -> list[ObjectId]:
    """``count`` manifests in order; returns their ids (parents before children)."""
    ids: list[ObjectId] = []
    with Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf()) as repo, repo.writer() as w:
        for i in range(count):
            parents: list[ObjectId] = [ids[-1]] if ids else []
            if i % 50 == 49 and i >= 25:
                parents.append(ids[i - 25])
            manifest = Manifest(ObjectType.DESIGN, 1, tuple(parents), (), T0 + 60 * i, 0, body(i))
            ids.append(w.add(manifest))
    with Repo.open(root, passphrase=PASSPHRASE) as repo:
        repo.update_ref("refs/heads/main", ids[-1])
    return ids


def fast_import_stream(root: Path, ids: list[ObjectId], out: Path) -> None:
    """The same commits as a fast-import stream (marks: 3 per manifest)."""
    who = EXPORT_IDENTITY.decode()
    with Repo.open(root, passphrase=PASSPHRASE) as repo, out.open("wb") as fh:
        mark_of: dict[ObjectId, int] = {}
        for n, oid in enumerate(ids):
            stored = repo.read_raw(oid)
            manifest = repo.read_object(oid)
            assert isinstance(manifest, Manifest) and hash_object(manifest)[0] == oid
            json_blob = manifest_json(oid, manifest)
            message = commit_message(oid, manifest)
            base = 3 * n + 1
            for mark, data in ((base, json_blob), (base + 1, stored)):
                fh.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")
            stamp = f"{who} {manifest.time} +0000\n".encode()
            fh.write(b"commit refs/heads/main\nmark :%d\n" % (base + 2))
            fh.write(b"author " + stamp + b"committer " + stamp)
            fh.write(b"data %d\n" % len(message) + message)
            for i, p in enumerate(manifest.parents):
                fh.write(b"%s :%d\n" % (b"from" if i == 0 else b"merge", mark_of[p]))
            if not manifest.parents and n:
                fh.write(b"deleteall\n")
            fh.write(b"M 100644 :%d manifest.json\n" % base)
            fh.write(b"M 100644 :%d manifest.cbor\n\n" % (base + 1))
            mark_of[oid] = base + 2


def rev_parse(repo: Path, rev: str, home: Path) -> str:
    return subprocess.run(
        [git_exe(), "-C", str(repo), "rev-parse", rev],
        env=git_env(home),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def measure(runs: int = 5, count: int = 10_000) -> Report:
    ensure_bytecode()
    names = (
        "steve export-git (first export)",
        "steve export-git (nothing new)",
        "git fast-import",
        "steve cat-file -t TIP (start-up: open the repository, one lookup)",
    )
    series = {n: Series(n) for n in names}
    with workdir("steve-bench-export-") as tmp:
        root = tmp / "steve"
        ids = build_history(root, count)
        stream = tmp / "stream.fi"
        fast_import_stream(root, ids, stream)
        home = tmp / "home"
        home.mkdir()
        env = steve_env()
        steve = steve_exe()
        for i in range(runs):
            with Repo.open(root, passphrase=PASSPHRASE) as repo:
                repo.delete_derived(GIT_MAP, [k for k, _ in repo.iter_derived(GIT_MAP)])
            out = tmp / f"out{i}.git"
            cmd = [steve, "-C", str(root), "export-git", str(out), "--bare"]
            series[names[0]].add(run(cmd, env=env))
            series[names[1]].add(run(cmd, env=env))
            probe = [steve, "-C", str(root), "cat-file", "-t", ids[-1].hex]
            series[names[3]].add(run(probe, env=env))
            g = tmp / f"fi{i}.git"
            run([git_exe(), "init", "-q", "--bare", str(g)], env=git_env(home), with_rss=False)
            series[names[2]].add(
                run(
                    [git_exe(), "-C", str(g), "fast-import", "--quiet"],
                    env=git_env(home),
                    stdin=stream,
                )
            )
            if i == 0:
                mine, theirs = rev_parse(out, "main", home), rev_parse(g, "main", home)
                if mine != theirs:
                    raise SystemExit(f"export and fast-import differ: {mine} != {theirs}")
            shutil.rmtree(out)
            shutil.rmtree(g)
    first, again, fi, startup = (series[n] for n in names)
    beyond = again.median - startup.median
    ratio = first.median / fi.median
    rows = [
        [s.name, fmt_s(s.median), fmt_s(s.minimum), f"{s.max_rss_mib:.0f}"] for s in series.values()
    ]
    detail = (
        f"{count:,} manifests (a chain with a merge every 50), {count * 4:,} git objects; "
        f"median of {runs} runs, alternating; both tips are the same commit id "
        f"(`{ids[-1].short()}` -> checked).\n\n"
        + table(["command", "median", "min", "peak RSS MiB"], rows)
    )
    goals = [
        (
            f"2. export-git of {count:,} manifests within {GOAL_RATIO:g}x of git fast-import",
            f"{ratio:.2f}x ({fmt_s(first.median)} vs {fmt_s(fi.median)})",
            verdict(ratio <= GOAL_RATIO),
        ),
        (
            "2. re-export with nothing new: < 100 ms beyond start-up (`cat-file -t`)",
            f"{fmt_s(beyond)} ({fmt_s(again.median)} - {fmt_s(startup.median)})",
            verdict(beyond < GOAL_REEXPORT),
        ),
        (
            f"steve export-git peak RSS < {GOAL_RSS_MIB} MiB",
            f"{max(first.max_rss_mib, again.max_rss_mib):.0f} MiB",
            verdict(max(first.max_rss_mib, again.max_rss_mib) < GOAL_RSS_MIB),
        ),
    ]
    return Report("export-git vs git fast-import", detail, goals)


def main() -> None:
    report = measure(runs_arg(5), count_arg(10_000))
    print(report.markdown())
    for goal in report.goals:
        print(f"- {goal[0]}: {goal[1]} {goal[2]}")


if __name__ == "__main__":
    main()
