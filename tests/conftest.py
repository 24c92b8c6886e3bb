"""Shared fixtures and hypothesis profiles for the whole suite.

Hypothesis profiles (select with ``HYPOTHESIS_PROFILE``):

``ci``   derandomized (same examples every run), no deadline, ~50 examples,
         failing examples printed as reproduction blobs.
``dev``  the default: random, more examples, still fast.

Repositories made by the fixtures use tiny Argon2id parameters (256 KiB, one
pass), stored in ``.steve/config``, so CLI subprocesses that open them are
fast too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from steve.repo import Repo
from steve.store.kdf import KdfParams
from steve.store.memory import MemoryBackend
from steve.store.sqlite import SqlCipherBackend

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=50,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

PASSPHRASE = "pw"


def make_fast_kdf() -> KdfParams:
    """Argon2id parameters cheap enough for tests (never use these for real data)."""
    return KdfParams(salt=os.urandom(16), memory_kib=256, iterations=1, parallelism=1)


@pytest.fixture(autouse=True)
def identity_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test reads or writes the user's real signing identity (~/.config/steve)."""
    path = tmp_path_factory.mktemp("identity") / "steve"
    monkeypatch.setenv("STEVE_IDENTITY_DIR", str(path))
    monkeypatch.delenv("STEVE_SIGNING_PASSPHRASE", raising=False)
    return path


@pytest.fixture
def fast_kdf() -> KdfParams:
    return make_fast_kdf()


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    """The directory a test repository lives in (``.steve/`` is created inside)."""
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.fixture
def repo(repo_path: Path, fast_kdf: KdfParams) -> Iterator[Repo]:
    """An encrypted on-disk repository opened with passphrase ``pw``; closed after."""
    r = Repo.init(repo_path, passphrase=PASSPHRASE, kdf=fast_kdf)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def mem_repo() -> Repo:
    return Repo.memory()


@pytest.fixture(params=["memory", "sqlcipher"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Each storage backend in turn: the contract suite runs against both."""
    if request.param == "memory":
        yield MemoryBackend()
        return
    db = SqlCipherBackend.create(tmp_path / "contract.db", os.urandom(32), busy_timeout=5.0)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def steve_env(repo_path: Path) -> dict[str, str]:
    """Environment for ``steve`` subprocesses against the ``repo`` fixture's repository."""
    env = dict(os.environ)
    for var in ("STEVE_KEY_FILE", "STEVE_DIR"):
        env.pop(var, None)
    env["STEVE_PASSPHRASE"] = PASSPHRASE
    env["STEVE_DIR"] = str(repo_path)
    return env


def docker_reachable() -> tuple[bool, str]:
    """Whether a Docker Engine answers ``docker version`` (and why not)."""
    exe = shutil.which("docker")
    if exe is None:
        return False, "the docker CLI is not installed"
    try:
        proc = subprocess.run(
            [exe, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"docker version failed: {exc}"
    if proc.returncode != 0 or not proc.stdout.strip():
        return False, f"docker engine unreachable: {proc.stderr.strip()[:200]}"
    return True, proc.stdout.strip()


@pytest.fixture(scope="session")
def require_docker() -> str:
    """Use in tests that need the Docker Engine.

    Unreachable Docker fails the test when ``STEVE_REQUIRE_DOCKER=1`` (CI),
    and skips it otherwise.  Returns the engine's version.
    """
    ok, why = docker_reachable()
    if not ok:
        if os.environ.get("STEVE_REQUIRE_DOCKER") == "1":
            pytest.fail(f"Docker is required (STEVE_REQUIRE_DOCKER=1) but {why}")
        pytest.skip(f"Docker not available: {why}")
    return why


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """Tests that did not run are listed loudly with why, never left as a count."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        longrepr = getattr(report, "longrepr", None)
        why = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        why = str(why).removeprefix("Skipped: ")
        reasons[why] = reasons.get(why, 0) + 1
    terminalreporter.section("tests that did NOT run", sep="!", red=True, bold=True)
    for why, n in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{n:>5} skipped: {why}")
    terminalreporter.write_line(
        "The README's test command runs every test on a machine with the Docker Engine "
        "and git; STEVE_REQUIRE_DOCKER=1 turns a missing engine into failures."
    )
