"""Shared helpers for the STEVE benchmarks (plain scripts, not tests).

Every benchmark runs the real ``steve`` console script and the real ``git``
binary as subprocesses, on the same files, in the same run, and reports
medians.  Per-process peak RSS comes from ``os.wait4`` (the rusage of exactly
that child, ``ru_maxrss`` in KiB on Linux).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import blake3

from steve.repo import Repo
from steve.store.kdf import KdfParams

PASSPHRASE = "bench passphrase"
FAST_KDF_MEMORY_KIB = 256


def fast_kdf() -> KdfParams:
    """Argon2id params cheap enough to not matter (what the test suite uses)."""
    return KdfParams(
        salt=os.urandom(16), memory_kib=FAST_KDF_MEMORY_KIB, iterations=1, parallelism=1
    )


def steve_exe() -> str:
    """The real ``steve`` console script of this interpreter.

    Prefer the script next to ``sys.executable`` over ``PATH``: a version
    manager's shim (pyenv's is a bash script that runs ``pyenv exec``) adds
    about 200 ms to every call and would measure the shim, not STEVE.
    """
    beside = Path(sys.executable).parent / "steve"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("steve")
    if found is None:
        raise SystemExit("steve is not installed (pip install -e .)")
    return found


def path_steve() -> str | None:
    """``steve`` as found on PATH, when it differs from :func:`steve_exe`."""
    found = shutil.which("steve")
    if found is None or Path(found).resolve() == Path(steve_exe()).resolve():
        return None
    return found


def git_exe() -> str:
    found = shutil.which("git")
    if found is None:
        raise SystemExit("git is not installed")
    return found


def git_env(home: Path) -> dict[str, str]:
    """A scrubbed environment for git: no user or system config, C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        LC_ALL="C",
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@localhost",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@localhost",
    )
    return env


def steve_env(*, passphrase: bool = True) -> dict[str, str]:
    """Environment for steve; without ``passphrase`` only a cached key can open a repo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env["LC_ALL"] = "C"
    if passphrase:
        env["STEVE_PASSPHRASE"] = PASSPHRASE
    return env


@dataclass
class Run:
    wall: float  # seconds
    maxrss_kib: int
    returncode: int
    cpu: float = 0.0  # user + system seconds of the command (GNU time or wait4)


def run(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: Path | None = None,
    stdout: Path | None = None,
    check: bool = True,
    with_rss: bool = True,
) -> Run:
    """Run ``cmd`` once; wall time around the whole process, its own peak RSS.

    Peak RSS is read through GNU time (``%M``) when it is installed: Linux
    carries the parent's high-water mark across fork+exec into the child's
    ``ru_maxrss``, so measuring straight from this (large) Python process
    would over-report small children.  Without GNU time, ``os.wait4``'s
    rusage is used and is an upper bound.
    """
    with contextlib.ExitStack() as stack:
        fin = stack.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        fout = stack.enter_context(stdout.open("wb")) if stdout else subprocess.DEVNULL
        full = list(cmd)
        rss_file: Path | None = None
        if GNU_TIME and with_rss:
            fd, name = tempfile.mkstemp(prefix="steve-bench-rss-")
            os.close(fd)
            rss_file = Path(name)
            full = [GNU_TIME, "-f", "%M %U %S", "-o", name, *full]
        start = time.perf_counter()
        proc = subprocess.Popen(full, cwd=cwd, env=env, stdin=fin, stdout=fout)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    rss = int(usage.ru_maxrss)
    cpu = usage.ru_utime + usage.ru_stime
    if rss_file is not None:
        text = rss_file.read_text().strip().splitlines()
        rss_file.unlink()
        fields = text[-1].split() if text else []
        if len(fields) == 3 and fields[0].isdigit():
            rss, cpu = int(fields[0]), float(fields[1]) + float(fields[2])
    if check and proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return Run(wall, rss, proc.returncode, cpu)


GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").is_file() else None


@dataclass
class Series:
    """Repeated measurements of one command."""

    name: str
    runs: list[Run] = field(default_factory=list)

    def add(self, r: Run) -> None:
        self.runs.append(r)

    @property
    def median(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def cpu_median(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def minimum(self) -> float:
        return min(r.wall for r in self.runs)

    @property
    def max_rss_mib(self) -> float:
        return max(r.maxrss_kib for r in self.runs) / 1024


def init_steve(root: Path, *, default_kdf: bool) -> Repo:
    """A fresh encrypted repository; the library is used so the KDF can be chosen."""
    kdf = KdfParams.fresh() if default_kdf else fast_kdf()
    return Repo.init(root, passphrase=PASSPHRASE, kdf=kdf)


def unlock(root: Path, ttl: str = "30m") -> None:
    """``steve unlock``: cache the key in the kernel keyring (not timed)."""
    proc = subprocess.run(
        [steve_exe(), "-C", str(root), "unlock", "--ttl", ttl],
        env=steve_env(),
        check=False,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"steve unlock failed (is the kernel keyring usable here?):\n{proc.stderr}"
        )


def lock(root: Path) -> None:
    subprocess.run(
        [steve_exe(), "-C", str(root), "lock"],
        env=steve_env(),
        check=False,
        stderr=subprocess.DEVNULL,
    )


def git_init(root: Path, home: Path) -> None:
    subprocess.run([git_exe(), "init", "-q", str(root)], env=git_env(home), check=True)


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    base = os.environ.get("STEVE_BENCH_TMP")  # e.g. to put the 1 GiB files elsewhere
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_small_files(directory: Path, count: int, size: int, seed: int = 0) -> Path:
    """``count`` files of ``size`` random bytes; returns a file listing their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    # random content, reproducible per seed (BLAKE3 in XOF mode as the generator)
    stream = blake3.blake3(f"steve bench {seed}".encode()).digest(length=count * size)
    lines = []
    for i in range(count):
        p = directory / f"f{i:05d}"
        p.write_bytes(stream[i * size : (i + 1) * size])
        lines.append(str(p))
    listing = directory.parent / f"{directory.name}.paths"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def make_large_file(path: Path, size: int) -> str:
    """A file of ``size`` random bytes, written 1 MiB at a time; returns its BLAKE3 hex."""
    h = blake3.blake3()
    piece = 1 << 20
    with path.open("wb") as fh:
        left = size
        while left:
            data = os.urandom(min(piece, left))
            fh.write(data)
            h.update(data)
            left -= len(data)
    return h.hexdigest()


def b3sum_file(path: Path) -> str:
    h = blake3.blake3()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def runs_arg(default: int) -> int:
    """``--runs N`` from argv (the scripts take no other options)."""
    if "--runs" in sys.argv:
        return int(sys.argv[sys.argv.index("--runs") + 1])
    return default


@dataclass
class Report:
    """What one benchmark script hands to run_all: a detail table and goal verdicts."""

    title: str
    detail: str
    goals: list[tuple[str, str, str]]  # (goal, measured, PASS/FAIL)

    def markdown(self) -> str:
        return f"### {self.title}\n\n{self.detail}\n"


def timed_cpu(
    cmd: Sequence[str],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: Path | None = None,
    stdout: Path | None = None,
) -> tuple[float, float]:
    """Run ``cmd`` once: (wall seconds, CPU seconds of that child, user + system).

    On a shared machine the CPU time is the steadier figure: wall time also
    counts the time other jobs held the cores."""
    with contextlib.ExitStack() as stack:
        fin = stack.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        fout = stack.enter_context(stdout.open("wb")) if stdout else subprocess.DEVNULL
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, env=env, stdin=fin, stdout=fout, stderr=subprocess.PIPE
        )
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime


def ensure_bytecode() -> None:
    """Write the bytecode cache of the ``steve`` package being measured.

    This machine sets PYTHONDONTWRITEBYTECODE=1, so without a cache every
    ``steve`` process would recompile the modules it imports (~0.1-0.3 s), a
    cost no installed copy pays (pip writes the cache at install time)."""
    import compileall

    import steve

    compileall.compile_dir(Path(steve.__file__).parent, quiet=1)
