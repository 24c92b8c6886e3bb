"""``steve export-git`` of a 10,000-manifest history vs ``git fast-import`` of the same commits.

    python bench/bench_export.py [--runs 5] [--count 10000] [--baseline DIR]

The STEVE history is built through the library (BatchWriter, fast KDF):
build receipts of about 700 bytes, each the child of the previous one, every
50th also merging the one 25 steps back; ``refs/heads/main`` at the tip.  Each
carries attachments as a real step's receipt does: its stdout log (a blob of
~1 KiB, ``logs[0].blob``) and one output (``outputs.dist``, a tree holding a
~2 KiB ``report.txt``), both linked from the envelope and different in every
receipt.  An exported commit's tree is then ``manifest.json``,
``manifest.cbor``, ``logs/0/blob`` and ``outputs/dist/report.txt``: 10 git
objects per manifest (4 blobs, 5 trees, a commit).

From it a ``git fast-import`` stream with the same content is generated (not
timed): per manifest the four blobs and a commit with the same author,
committer, dates, message, parents and paths (fast-import builds the same
trees).  The first run checks that both tips are the same git commit id, so
the two sides really build the same objects.

``--baseline DIR`` also times the first export of the ``steve`` package in
DIR (another checkout, e.g. a worktree of main: ``PYTHONPATH=DIR``),
interleaved with the others, for before/after figures from one run.

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

import compileall
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
from steve.gitbridge.layout import (
    EXPORT_IDENTITY,
    GIT_MAP,
    attachments,
    commit_message,
    manifest_json,
)
from steve.objects.model import Blob, Manifest, Mode, ObjectType, Tree, TreeEntry, hash_object
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


def log_text(i: int) -> bytes:
    """A step's stdout, ~1 KiB, different in every receipt."""
    lines = [
        f"[{i}:{j:02d}] compiling module_{(i * 7 + j) % 97:02d}.py ... ok\n" for j in range(24)
    ]
    return "".join(lines).encode()


def report_text(i: int) -> bytes:
    """The step's output file, ~2 KiB, different in every receipt."""
    rows = [
        f"case_{j:03d},{(i * 31 + j * 17) % 1000},{'pass' if (i + j) % 9 else 'fail'}\n"
        for j in range(110)
    ]
    return (f"# report of step {i}\ncase,duration_ms,result\n" + "".join(rows)).encode()


def receipt(i: int, log: ObjectId, output: ObjectId) -> dict[str, object]:
    """A build receipt (schema 2) of a step with one log and one output tree."""
    return {
        "node": f"step-{i % 40:02d}",
        "action_key": f"{i:064x}",
        "image": "sha256:" + "ab" * 32,
        "command": ["python", "-m", "pytest", "-q", f"tests/unit_{i % 40:02d}"],
        "env": {"LANG": "C.UTF-8", "PYTHONHASHSEED": "0"},
        "toolchain": {"python": "3.12.3"},
        "declared_outputs": ["dist"],
        "outputs": {"dist": output.hex},
        "logs": [{"stream": "stdout", "blob": log.hex}],
        "exit_status": 0,
        "started_at": T0 + 60 * i,
        "finished_at": T0 + 60 * i + 42,
        "duration_ms": 42_000 + i % 1000,
        "nondeterminism": [f"timestamps in report {i}"],
    }


def build_history(root: Path, count: int, *, attachments: bool = False) -> list[ObjectId]:
    """``count`` manifests in order; returns their ids (parents before children).

    Design manifests without attachments, or (``attachments``) build receipts
    with a log blob and an output tree each."""
    ids: list[ObjectId] = []
    with Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf()) as repo, repo.writer() as w:
        for i in range(count):
            parents: list[ObjectId] = [ids[-1]] if ids else []
            if i % 50 == 49 and i >= 25:
                parents.append(ids[i - 25])
            if attachments:
                log = w.add(Blob(log_text(i)))
                report = w.add(Blob(report_text(i)))
                output = w.add(Tree.from_entries([TreeEntry("report.txt", Mode.FILE, report)]))
                links = tuple(sorted({log, output}))
                kind, version, content = ObjectType.BUILD_RECEIPT, 2, receipt(i, log, output)
            else:
                links, kind, version, content = (), ObjectType.DESIGN, 1, body(i)
            manifest = Manifest(kind, version, tuple(parents), links, T0 + 60 * i, 0, content)
            ids.append(w.add(manifest))
    with Repo.open(root, passphrase=PASSPHRASE) as repo:
        repo.update_ref("refs/heads/main", ids[-1])
    return ids


def fast_import_stream(root: Path, ids: list[ObjectId], out: Path) -> None:
    """The same commits as a fast-import stream: per manifest a mark for each file
    (manifest.json, manifest.cbor, the attached blobs at their exported paths)
    and one for the commit."""
    who = EXPORT_IDENTITY.decode()
    with Repo.open(root, passphrase=PASSPHRASE) as repo, out.open("wb") as fh:
        mark_of: dict[ObjectId, int] = {}
        mark = 0
        for n, oid in enumerate(ids):
            stored = repo.read_raw(oid)
            manifest = repo.read_object(oid)
            assert isinstance(manifest, Manifest) and hash_object(manifest)[0] == oid
            files = [("manifest.json", manifest_json(oid, manifest)), ("manifest.cbor", stored)]
            for path, target in attachments(manifest):
                files.extend(attached_files("/".join(path), repo, target))
            marks = []
            for path, data in files:
                mark += 1
                marks.append((mark, path))
                fh.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")
            message = commit_message(oid, manifest)
            stamp = f"{who} {manifest.time} +0000\n".encode()
            mark += 1
            fh.write(b"commit refs/heads/main\nmark :%d\n" % mark)
            fh.write(b"author " + stamp + b"committer " + stamp)
            fh.write(b"data %d\n" % len(message) + message)
            for i, p in enumerate(manifest.parents):
                fh.write(b"%s :%d\n" % (b"from" if i == 0 else b"merge", mark_of[p]))
            if n:
                fh.write(b"deleteall\n")
            for m, path in marks:
                fh.write(b"M 100644 :%d %s\n" % (m, path.encode()))
            fh.write(b"\n")
            mark_of[oid] = mark


def attached_files(path: str, repo: Repo, oid: ObjectId) -> list[tuple[str, bytes]]:
    """(git path, content) of every file of an attachment (a blob, or a tree of blobs)."""
    obj = repo.read_object(oid)
    if isinstance(obj, Blob):
        return [(path, obj.data)]
    assert isinstance(obj, Tree)
    out = []
    for e in obj.entries:
        assert e.mode is Mode.FILE or e.mode is Mode.TREE
        out.extend(attached_files(f"{path}/{e.name}", repo, e.oid))
    return out


def rev_parse(repo: Path, rev: str, home: Path) -> str:
    return subprocess.run(
        [git_exe(), "-C", str(repo), "rev-parse", rev],
        env=git_env(home),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def baseline_arg() -> Path | None:
    if "--baseline" in sys.argv:
        return Path(sys.argv[sys.argv.index("--baseline") + 1]).resolve()
    return None


def measure(runs: int = 5, count: int = 10_000, baseline: Path | None = None) -> Report:
    ensure_bytecode()
    names = [
        "steve export-git (first export)",
        "steve export-git (nothing new)",
        "git fast-import",
        "steve cat-file -t TIP (start-up: open the repository, one lookup)",
    ]
    if baseline is not None:
        compileall.compile_dir(baseline / "steve", quiet=1)
        names.append(f"baseline {baseline}: steve export-git (first export)")
    series = {n: Series(n) for n in names}
    with workdir("steve-bench-export-") as tmp:
        root = tmp / "steve"
        ids = build_history(root, count, attachments=True)
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
            if baseline is not None:
                with Repo.open(root, passphrase=PASSPHRASE) as repo:
                    repo.delete_derived(GIT_MAP, [k for k, _ in repo.iter_derived(GIT_MAP)])
                old = tmp / f"base{i}.git"
                base_env = dict(env, PYTHONPATH=str(baseline))
                base_cmd = [steve, "-C", str(root), "export-git", str(old), "--bare"]
                series[names[4]].add(run(base_cmd, env=base_env))
                if i == 0 and rev_parse(old, "main", home) != rev_parse(out, "main", home):
                    raise SystemExit("the baseline's export differs from this one's")
                shutil.rmtree(old)
            shutil.rmtree(out)
            shutil.rmtree(g)
    first, again, fi, startup = (series[n] for n in names[:4])
    beyond = again.median - startup.median
    ratio = first.median / fi.median
    cpu_ratio = first.cpu_median / fi.cpu_median
    rows = [
        [
            s.name,
            fmt_s(s.median),
            fmt_s(s.minimum),
            fmt_s(s.cpu_median),
            f"{s.max_rss_mib:.0f}",
        ]
        for s in series.values()
    ]
    detail = (
        f"{count:,} build receipts (a chain with a merge every 50), each with a log blob "
        f"and an output tree attached: {count * 10:,} git objects; "
        f"median of {runs} runs, alternating; both tips are the same commit id "
        f"(`{ids[-1].short()}` -> checked).\n\n"
        + table(["command", "median wall", "min wall", "median CPU", "peak RSS MiB"], rows)
    )
    if baseline is not None:
        base = series[names[4]]
        detail += (
            f"\n\nfirst export, this tree vs the baseline: {first.median / base.median:.2f}x "
            f"wall, {first.cpu_median / base.cpu_median:.2f}x CPU"
        )
    goals = [
        (
            f"2. export-git of {count:,} manifests within {GOAL_RATIO:g}x of git fast-import",
            f"{ratio:.2f}x ({fmt_s(first.median)} vs {fmt_s(fi.median)}; CPU {cpu_ratio:.2f}x)",
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
    report = measure(runs_arg(5), count_arg(10_000), baseline_arg())
    print(report.markdown())
    for goal in report.goals:
        print(f"- {goal[0]}: {goal[1]} {goal[2]}")


if __name__ == "__main__":
    main()
