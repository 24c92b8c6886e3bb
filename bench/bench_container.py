"""Container overhead per step: steve's DockerRunner against ``docker run --rm``.

    python bench/bench_container.py [--runs 15]

The image is the test image (``FROM scratch`` + static busybox), built offline
with the library.  Measured, interleaved, in the same run (medians):

- ``docker run --rm --network none IMG /bin/true`` (the docker CLI: create,
  attach, start, wait, remove; the CLI's own start-up included);
- ``DockerRunner.run`` of the same no-op under the default policy (volume,
  create, inputs tar, attach, start, wait, inspect, logs into the store,
  remove container and volume), in-process, into an encrypted repository;
- the same with a small input tree (20 files) copied to a declared output
  that comes back through ``get_archive`` into the store.

Goal (issue 6): the no-op step within 1.5x of ``docker run --rm``.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Report, fast_kdf, fmt_s, runs_arg, table, verdict, workdir
from steve.exec import ContainerPolicy, DockerRunner, Engine, StepSpec, connect
from steve.repo import Repo

GOAL = 1.5
DOCKERFILE = (
    'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
)


def build_image(engine: Engine, tmp: Path) -> str:
    ctx = tmp / "ctx"
    ctx.mkdir()
    shutil.copy2("/bin/busybox", ctx / "busybox")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    return engine.images.build(ctx, tag="steve-test-busybox:latest").id


def docker_run(image: str) -> float:
    t = time.perf_counter()
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "/bin/true"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t


def steve_step(runner: DockerRunner, repo: Repo, spec: StepSpec) -> float:
    t = time.perf_counter()
    result = runner.run(repo, spec)
    elapsed = time.perf_counter() - t
    if result.failure is not None:
        raise SystemExit(f"step failed: {result.failure} {result.failure_detail}")
    return elapsed


def measure(runs: int = 15) -> Report:
    with workdir("steve-bench-container-") as tmp, connect() as engine:
        image = build_image(engine, tmp)
        repo = Repo.init(tmp / "repo", passphrase="bench", kdf=fast_kdf())
        src = tmp / "src"
        src.mkdir()
        for i in range(20):
            (src / f"f{i:02}.txt").write_bytes(bytes(range(256)) * 4)
        tree = repo.write_tree(src)
        runner = DockerRunner(engine)
        run_id = f"bench-{uuid.uuid4().hex[:8]}"

        def spec(command: tuple[str, ...], io: bool) -> StepSpec:
            return StepSpec(
                run_id=run_id,
                step_id="noop",
                image=image,
                command=command,
                env={},
                inputs={"in": tree} if io else {},
                outputs=("out",) if io else (),
                policy=ContainerPolicy(),
                timeout_s=60.0,
            )

        noop = spec(("/bin/true",), io=False)
        copy = spec(("/bin/cp", "-a", "in", "out"), io=True)
        # warm up (first container start pays for page cache, image mount)
        docker_run(image)
        steve_step(runner, repo, noop)
        cli: list[float] = []
        lib: list[float] = []
        lib_io: list[float] = []
        for _ in range(runs):
            cli.append(docker_run(image))
            lib.append(steve_step(runner, repo, noop))
            lib_io.append(steve_step(runner, repo, copy))
        repo.close()
    med_cli, med_lib, med_io = (statistics.median(x) for x in (cli, lib, lib_io))
    ratio = med_lib / med_cli
    detail = table(
        ["what", "median", "min", "vs docker run --rm"],
        [
            [
                "`docker run --rm --network none IMG /bin/true`",
                fmt_s(med_cli),
                fmt_s(min(cli)),
                "1.0x",
            ],
            ["steve `DockerRunner.run`, no-op", fmt_s(med_lib), fmt_s(min(lib)), f"{ratio:.2f}x"],
            [
                "steve, 20-file input tree -> declared output",
                fmt_s(med_io),
                fmt_s(min(lib_io)),
                f"{med_io / med_cli:.2f}x",
            ],
        ],
    )
    goal = (
        f"no-op step within {GOAL}x of `docker run --rm`",
        f"{ratio:.2f}x",
        verdict(ratio <= GOAL),
    )
    return Report(f"Container step overhead (medians of {runs})", detail, [goal])


def main() -> None:
    report = measure(runs_arg(15))
    print(report.markdown())
    print(table(["goal", "measured", "result"], [list(g) for g in report.goals]))


if __name__ == "__main__":
    main()
