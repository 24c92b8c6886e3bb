"""A fully cached 50-node build: ``steve build`` when nothing changed, against ``make``.

    python bench/bench_build.py [--runs 7]

A plan of 50 nodes (10 layers of 5; each node reads one output of the layer
above and writes its own) runs once in containers (busybox image built
offline; not timed).  Then, interleaved and in the same run (medians):

- ``steve build`` (the console script: start-up, key, engine ping, 50
  action-cache lookups and receipt checks, 50 ref checks, no container);
- ``build()`` in-process (the library part of the same, engine connected);
- the peer: ``make`` on a Makefile with the same 50 targets, all up to date.

Goal (issue 6): the fully cached 50-node build under 2 s.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PASSPHRASE,
    Report,
    fast_kdf,
    fmt_s,
    runs_arg,
    steve_env,
    steve_exe,
    table,
    verdict,
    workdir,
)
from steve.exec import DockerRunner, connect
from steve.porcelain import stages
from steve.porcelain.build import build
from steve.porcelain.runs import Stage, goto, new_run
from steve.porcelain.steps import NodeStatus
from steve.repo import Repo

GOAL_S = 2.0
LAYERS, WIDTH = 10, 5
DOCKERFILE = (
    'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
)


def plan_draft(image: str, src: str) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    for layer in range(LAYERS):
        for i in range(WIDTH):
            nid = f"n{layer}-{i}"
            if layer == 0:
                inputs = [{"name": "in", "pinned": src}]
            else:
                up = f"n{layer - 1}-{i}"
                inputs = [{"name": "in", "node": up, "output": "out"}]
                edges.append({"from_node": up, "to_node": nid})
            nodes.append(
                {
                    "id": nid,
                    "kind": "run",
                    "image": image,
                    "command": ["/bin/sh", "-c", f"mkdir out && cat in > out/{nid}"],
                    "inputs": inputs,
                    "outputs": ["out"],
                }
            )
    # layer > 0 reads a directory: make its input the file inside it
    for n in nodes[WIDTH:]:
        n["command"] = ["/bin/sh", "-c", f"mkdir out && cat in/* > out/{n['id']}"]
    return {"title": "bench: 50 nodes", "nodes": nodes, "edges": edges}


def makefile(directory: Path) -> None:
    lines = []
    for layer in range(LAYERS):
        for i in range(WIDTH):
            target = f"n{layer}-{i}"
            dep = "src" if layer == 0 else f"n{layer - 1}-{i}"
            lines.append(f"{target}: {dep}\n\tcat {dep} > {target}\n")
    lines.insert(0, "all: " + " ".join(f"n{LAYERS - 1}-{i}" for i in range(WIDTH)) + "\n")
    (directory / "Makefile").write_text("\n".join(lines))
    (directory / "src").write_text("source\n")
    subprocess.run(["make", "-s", "-C", str(directory)], check=True)


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def measure(runs: int = 7) -> Report:
    with workdir("steve-bench-build-") as tmp, connect() as engine:
        ctx = tmp / "ctx"
        ctx.mkdir()
        shutil.copy2("/bin/busybox", ctx / "busybox")
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        image = engine.images.build(ctx, tag="steve-test-busybox:latest").id
        root = tmp / "repo"
        repo = Repo.init(root, passphrase=PASSPHRASE, kdf=fast_kdf())
        src = repo.write_blob(b"source\n")
        run = new_run(repo, name="bench", now=1, actor="bench")
        goto(repo, run.id, Stage.RESEARCH, now=1, actor="bench")
        goto(repo, run.id, Stage.PLAN, now=1, actor="bench")
        stages.record(repo, "plan", plan_draft(image, src.hex), now=1, tz=0, actor="bench")
        runner = DockerRunner(engine)
        first = build(repo, runner, jobs=2)  # not timed: 50 containers
        if not first.ok:
            raise SystemExit(f"the first build failed: {first.failed[0]}")
        make_dir = tmp / "make"
        make_dir.mkdir()
        makefile(make_dir)
        env = {**steve_env(), "STEVE_DIR": str(root)}
        cli: list[float] = []
        lib: list[float] = []
        mk: list[float] = []
        timed([steve_exe(), "build"], env)  # warm the page cache
        for _ in range(runs):
            cli.append(timed([steve_exe(), "build"], env))
            t = time.perf_counter()
            report = build(repo, runner)
            lib.append(time.perf_counter() - t)
            if report.count(NodeStatus.CACHED) != LAYERS * WIDTH:
                raise SystemExit("the cached build was not fully cached")
            mk.append(timed(["make", "-s", "-C", str(make_dir)], env))
        repo.close()
    med_cli, med_lib, med_make = (statistics.median(x) for x in (cli, lib, mk))
    detail = table(
        ["what", "median", "min"],
        [
            [
                "`steve build`, 50 nodes, all cached (console script)",
                fmt_s(med_cli),
                fmt_s(min(cli)),
            ],
            ["`build()` in-process, 50 nodes, all cached", fmt_s(med_lib), fmt_s(min(lib))],
            ["`make`, 50 targets, all up to date", fmt_s(med_make), fmt_s(min(mk))],
        ],
    )
    goal = (
        "fully cached 50-node `steve build` under 2 s",
        fmt_s(med_cli),
        verdict(med_cli < GOAL_S),
    )
    return Report(f"Fully cached build (medians of {runs})", detail, [goal])


def main() -> None:
    report = measure(runs_arg(7))
    print(report.markdown())
    print(table(["goal", "measured", "result"], [list(g) for g in report.goals]))


if __name__ == "__main__":
    main()
