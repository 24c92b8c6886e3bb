"""``steved``: the daemon's entry point and the executor that runs forwarded commands.

The executor runs the very click command the client would have run, in this
process, on the server's single writer thread: stdout/stderr stream back to
the client, stdin is pulled from it on demand, the client's cwd and
``STEVE_*`` environment apply for the duration, and the repository is the one
steved holds open with its key (``LENT_REPO``), so no Argon2id and no
database open per command.  Process-wide state (cwd, environment, sys.std*)
is why forwarded commands run one at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from steve.cli.app import LENT_REPO, LentRepo, cli, report
from steve.cli.forward import FORWARDED_ENV, NOT_FORWARDED
from steve.daemon.paths import DaemonPaths
from steve.daemon.server import Job
from steve.errors import DaemonAlreadyRunning, SteveError
from steve.repo import Repo


class _JobOut(io.RawIOBase):
    def __init__(self, job: Job, fd: int) -> None:
        self.job = job
        self.fd = fd

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        b = bytes(data)
        self.job.write(self.fd, b)
        return len(b)


class _JobIn(io.RawIOBase):
    def __init__(self, job: Job) -> None:
        self.job = job
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._rest:
            self._rest = self.job.read_stdin()
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def _text(raw: io.RawIOBase, *, write: bool) -> TextIO:
    buffered: io.BufferedWriter | io.BufferedReader = (
        io.BufferedWriter(raw, 1 << 16) if write else io.BufferedReader(raw, 1 << 16)
    )
    return io.TextIOWrapper(
        buffered,
        encoding="utf-8",
        errors="surrogateescape",
        write_through=True,
        line_buffering=False,
    )


@contextlib.contextmanager
def _as_client(job: Job) -> Iterator[None]:
    """The client's cwd, environment and standard streams, for one command."""
    saved_env = {
        k: os.environ.get(k)
        for k in {*os.environ, *job.env}
        if k.startswith("STEVE_") or k in FORWARDED_ENV
    }
    saved = (sys.stdin, sys.stdout, sys.stderr, str(Path.cwd()))
    out, err, inp = (
        _text(_JobOut(job, 1), write=True),
        _text(_JobOut(job, 2), write=True),
        _text(_JobIn(job), write=False),
    )
    try:
        for k in saved_env:
            if k in NOT_FORWARDED:
                continue
            value = job.env.get(k)
            if value is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = value
        try:
            os.chdir(job.cwd)
        except OSError:
            os.chdir("/")
        sys.stdin, sys.stdout, sys.stderr = inp, out, err
        yield
    finally:
        for stream in (out, err):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        sys.stdin, sys.stdout, sys.stderr = saved[0], saved[1], saved[2]
        os.chdir(saved[3])
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class CommandExecutor:
    """:class:`steve.daemon.server.Executor`: runs click commands against the held repo."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._repo: Repo | None = None
        self._key: bytes | None = None

    def _lent(self, key: bytes, correlation_id: str) -> LentRepo:
        if self._repo is None or self._key != key:
            self.drop()
            self._repo = Repo.open(self.root, key=key)
            self._key = key
        return LentRepo(self.root, self._repo, correlation_id)

    def run(self, job: Job, key: bytes) -> int:
        lent = self._lent(key, job.correlation_id)
        token = LENT_REPO.set(lent)
        code: int = 0
        try:
            with _as_client(job):
                try:
                    cli.main(args=job.argv, prog_name="steve")
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            LENT_REPO.reset(token)
        return code

    def drop(self) -> None:
        if self._repo is not None:
            self._repo.close()
        self._repo = None
        self._key = None


# --- the daemon process ---------------------------------------------------------------------


def acquire_lock(paths: DaemonPaths) -> int:
    """Hold the daemon lock of this repository (released by the kernel when the
    process dies, so a kill -9 leaves nothing to clean up)."""
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pid = read_pid(paths)
        raise DaemonAlreadyRunning(f"pid {pid}" if pid else str(paths.lock)) from None
    return fd


def read_pid(paths: DaemonPaths) -> int | None:
    try:
        return int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None


def lock_is_held(paths: DaemonPaths) -> bool:
    try:
        fd = os.open(paths.lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _key_for(root: Path, key_stdin: bool) -> bytes:
    from steve.cli.app import passphrase
    from steve.store import keycache
    from steve.store.kdf import key_matches

    config = Repo.read_config(root)
    if key_stdin:
        line = sys.stdin.buffer.readline().strip()
        key = bytes.fromhex(line.decode("ascii"))
        if not key_matches(key, config.key_check):
            from steve.errors import WrongKey

            raise WrongKey("the key steve daemon start passed")
        return key
    cached = keycache.cached_key(config.repository_id)
    if cached is not None and key_matches(cached, config.key_check):
        return cached
    return Repo.derive_key(root, passphrase())


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--repo",
    "-C",
    "repo_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="STEVE_DIR",
    help="Repository directory (default: search upward from cwd).",
)
@click.option(
    "--http",
    "http",
    metavar="HOST:PORT",
    help="Serve /healthz and /metrics on this loopback address (off by default).",
)
@click.option(
    "--ttl",
    default="8h",
    show_default=True,
    help="Drop the key after this long (0: keep it until `steve lock`).",
)
@click.option(
    "--key-stdin", is_flag=True, help="Read the key (hex) from stdin (steve daemon start)."
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON Lines log file (default .steve/steved.log; - for stderr).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Lowest level logged.",
)
@click.option(
    "--queue",
    "queue_size",
    type=click.IntRange(1, 65536),
    default=256,
    show_default=True,
    help="Requests that may wait for the writer.",
)
def steved(
    repo_dir: Path | None,
    http: str | None,
    ttl: str,
    key_stdin: bool,
    log_file: Path | None,
    log_level: str,
    queue_size: int,
) -> None:
    """Serve one repository over .steve/steved.sock until SIGTERM (see docs/daemon.md)."""
    from steve.cli.plumbing import parse_duration
    from steve.daemon.events import RepoEvents
    from steve.daemon.metrics import DaemonMetrics, HealthServer, parse_loopback
    from steve.daemon.server import Limits, Server
    from steve.events.jsonlog import JsonLogger
    from steve.repo import find_repository
    from steve.store.kdf import key_matches

    root = (repo_dir or find_repository(Path.cwd())).resolve()
    config = Repo.read_config(root)
    paths = DaemonPaths(root / ".steve")
    seconds = parse_duration(ttl)
    if http is not None:
        parse_loopback(http)  # refuse before anything starts
    lock_fd = acquire_lock(paths)
    stream: TextIO
    if log_file is not None and str(log_file) == "-":
        stream = sys.stderr
    else:
        stream = (log_file or paths.log).open("a", encoding="utf-8")
        (log_file or paths.log).chmod(0o600)
    logger = JsonLogger(stream, level=log_level, target="steved")
    key = _key_for(root, key_stdin)
    metrics = DaemonMetrics()
    server = Server(
        paths,
        CommandExecutor(root),
        RepoEvents(paths.steve_dir),
        key,
        repository_id=config.repository_id,
        limits=Limits(queue=queue_size),
        ttl=float(seconds) if seconds else None,
        logger=logger,
        metrics=metrics,
        key_check=lambda k: key_matches(k, config.key_check),
    )
    health: HealthServer | None = None
    try:
        server.bind()
        if http is not None:
            health = HealthServer(http, metrics, server.status)
            health.start()
        tmp = paths.pid.with_suffix(".tmp")
        tmp.write_text(f"{os.getpid()}\n")
        tmp.chmod(0o600)
        tmp.replace(paths.pid)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: server.stop())
        ready = f"ready {os.getpid()}" + (f" http={health.port}" if health else "")
        click.echo(ready)
        sys.stdout.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # the starter read its line; nothing more goes to stdout
        os.close(devnull)
        server.serve_forever()
    finally:
        if health is not None:
            health.stop()
        if read_pid(paths) == os.getpid():
            with contextlib.suppress(OSError):
                paths.pid.unlink()
        os.close(lock_fd)


def main() -> None:
    """The ``steved`` console script."""
    try:
        steved.main(prog_name="steved", standalone_mode=False)
    except SteveError as err:
        report(err)
        sys.exit(err.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":
    main()
