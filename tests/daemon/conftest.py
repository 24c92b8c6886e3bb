"""Fixtures: a repository and a real steved process serving it (``python -m
steve.cli.serve``, the module behind the ``steved`` script), stopped after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from steve.daemon.client import Client
from steve.repo import Repo
from steve.store.kdf import KdfParams

PASSPHRASE = "pw"


def env_for(repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    env.update(
        STEVE_PASSPHRASE=PASSPHRASE,
        STEVE_DIR=str(repo),
        STEVE_AUTHOR_NAME="Tess Ter",
        STEVE_AUTHOR_EMAIL="tess@example.org",
        STEVE_IDENTITY_DIR=os.environ["STEVE_IDENTITY_DIR"],
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p and Path(p).is_dir()),
    )
    return env


def steve(
    repo: Path,
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """The real CLI in a subprocess (it forwards to steved when one runs)."""
    return subprocess.run(
        [sys.executable, "-m", "steve.cli.main", *args],
        input=input,
        capture_output=True,
        env=env or env_for(repo),
        cwd=repo,
        timeout=timeout,
        check=False,
    )


@dataclass
class Daemon:
    repo: Path
    proc: subprocess.Popen[bytes] | None = None
    http_port: int | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.repo / ".steve" / "steved.sock"

    def start(self, *extra: str) -> Daemon:
        self.extra = list(extra)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "steve.cli.serve",
                "--repo",
                str(self.repo),
                "--log-file",
                str(self.repo.parent / "steved.log"),
                "--log-level",
                "debug",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env_for(self.repo),
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert line.startswith("ready "), (
            line,
            self.proc.stderr.read() if self.proc.stderr else b"",
        )
        if "http=" in line:
            self.http_port = int(line.split("http=")[1])
        return self

    def client(self) -> Client:
        return Client(self.socket)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr) if self.proc else ():
            if stream is not None:
                stream.close()

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


@pytest.fixture
def served_repo(tmp_path: Path, fast_kdf: KdfParams) -> Path:
    path = tmp_path / "r"
    Repo.init(path, passphrase=PASSPHRASE, kdf=fast_kdf).close()
    return path


@pytest.fixture
def daemon(served_repo: Path) -> Iterator[Daemon]:
    d = Daemon(served_repo).start()
    try:
        yield d
    finally:
        d.stop()


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
