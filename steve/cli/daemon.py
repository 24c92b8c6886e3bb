"""Daemon commands: ``steve daemon start|stop|status`` and ``steve ping``; the client
side of ``steve events --follow`` through steved and of unlocking a locked daemon."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from steve.cli.app import BlockWriter, Context, cli, pass_state
from steve.cli.forward import socket_path
from steve.daemon.client import Client
from steve.daemon.paths import DaemonPaths
from steve.errors import (
    DaemonConnectionLost,
    DaemonLocked,
    DaemonNotRunning,
    DaemonStartFailed,
    DaemonStopTimeout,
    FollowerLagged,
    InvalidInput,
)

if TYPE_CHECKING:
    from steve.events import Event

START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
RECONNECT_FOR = 10.0


def _paths(state: Context) -> DaemonPaths:
    return DaemonPaths(state.root().resolve() / ".steve")


def _client(state: Context) -> Client:
    return Client(socket_path(state.root().resolve()))


def held_key(root: Path) -> bytes:
    """The key as a direct command would get it: cached, else derived from the passphrase."""
    from steve.cli.app import passphrase
    from steve.repo import Repo
    from steve.store import keycache
    from steve.store.kdf import key_matches

    config = Repo.read_config(root)
    cached = keycache.cached_key(config.repository_id)
    if cached is not None and key_matches(cached, config.key_check):
        return cached
    return Repo.derive_key(root, passphrase())


def unlock_daemon(client: Client, root: Path) -> None:
    """Give a locked daemon the key (derived here, as a direct command would)."""
    client.call("unlock", key=held_key(root))


@cli.group()
def daemon() -> None:
    """Start, stop or inspect steved, the repository's daemon (docs/daemon.md)."""


@daemon.command("start")
@click.option(
    "--http", metavar="HOST:PORT", help="Also serve /healthz and /metrics (loopback only)."
)
@click.option(
    "--ttl",
    default="8h",
    show_default=True,
    help="Drop the key after this long (0: keep it until `steve lock`).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Lowest level logged to .steve/steved.log.",
)
@pass_state
def daemon_start(state: Context, http: str | None, ttl: str, log_level: str) -> None:
    """Unlock once, start steved in the background and print its pid."""
    from steve.cli.serve import acquire_lock
    from steve.daemon.metrics import parse_loopback

    root = state.root().resolve()
    paths = DaemonPaths(root / ".steve")
    if http is not None:
        parse_loopback(http)
    os.close(acquire_lock(paths))  # refuse early (steved checks again, atomically)
    key = held_key(root)
    argv = [
        sys.executable,
        "-m",
        "steve.cli.serve",
        "--repo",
        str(root),
        "--key-stdin",
        "--ttl",
        ttl,
        "--log-level",
        log_level,
    ]
    if http is not None:
        argv += ["--http", http]
    with paths.log.open("a", encoding="utf-8") as log:
        paths.log.chmod(0o600)
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(key.hex().encode() + b"\n")
    proc.stdin.close()
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
    line = proc.stdout.readline().decode(errors="replace").strip() if ready else ""
    proc.stdout.close()
    if not line.startswith("ready "):
        code = proc.poll()
        raise DaemonStartFailed(
            f"exit status {code}; see {paths.log}"
            if code is not None
            else f"no ready line within {START_TIMEOUT:g}s; see {paths.log}"
        )
    click.echo(line.removeprefix("ready "))


@daemon.command("stop")
@pass_state
def daemon_stop(state: Context) -> None:
    """Stop steved gracefully (in-flight and queued writes finish first)."""
    from steve.cli.serve import lock_is_held, read_pid

    paths = _paths(state)
    pid = read_pid(paths)
    if not lock_is_held(paths):
        raise DaemonNotRunning(f"no daemon holds {paths.lock}")
    try:
        with _client(state) as client:
            client.call("stop")
    except (DaemonNotRunning, DaemonConnectionLost):
        if pid is not None:
            os.kill(pid, 15)
    deadline = time.monotonic() + STOP_TIMEOUT
    while lock_is_held(paths):
        if time.monotonic() > deadline:
            raise DaemonStopTimeout(pid or 0, STOP_TIMEOUT)
        time.sleep(0.05)
    click.echo("stopped", err=True)


@daemon.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@pass_state
def daemon_status(state: Context, as_json: bool) -> None:
    """Whether steved runs, and its writer queue, clients, key and event head."""
    with _client(state) as client:
        status = client.call("status")
    status.pop("t", None)
    status.pop("id", None)
    if as_json:
        click.echo(json.dumps(status, sort_keys=True))
        return
    for name in (
        "pid",
        "repository",
        "locked",
        "queue",
        "in_flight",
        "clients",
        "requests",
        "event_head",
        "last_commit",
        "uptime",
    ):
        click.echo(f"{name}: {status.get(name)}")


@cli.command()
@click.option(
    "--count",
    "-c",
    type=click.IntRange(1, 1_000_000),
    default=1,
    show_default=True,
    help="Round trips to make (one connection).",
)
@pass_state
def ping(state: Context, count: int) -> None:
    """Round-trip to steved; prints its pid and the median round-trip time."""
    with _client(state) as client:
        times = []
        reply: dict[str, object] = {}
        for _ in range(count):
            t0 = time.perf_counter()
            reply = client.call("ping")
            times.append(time.perf_counter() - t0)
    times.sort()
    locked = " (locked)" if reply.get("locked") else ""
    click.echo(f"pong from pid {reply.get('pid')}{locked} in {times[len(times) // 2] * 1e6:.0f} us")


def follow_through(client: Client, root: Path, args: list[str]) -> int:
    """``steve events --follow`` through steved (see :func:`follow_daemon`)."""
    from steve.cli.events import events as events_command
    from steve.cli.events import format_event

    if any(a in events_command.commands for a in args):
        raise InvalidInput("--follow lists events; it takes no subcommand")
    p = events_command.make_context("events", list(args)).params
    filters = {
        "run_id": p["run_id"],
        "correlation_id": p["correlation"],
        "event_type": p["event_type"],
    }
    out = BlockWriter(sys.stdout.buffer, flush_each=True)
    as_json = bool(p["as_json"])
    return follow_daemon(
        client,
        root,
        int(p["from_seq"]),
        filters,
        lambda event: out.line(format_event(event, as_json).encode()),
    )


def follow_daemon(
    client: Client,
    root: Path,
    from_seq: int,
    filters: dict[str, Any],
    emit: Callable[[Event], None],
) -> int:
    """Follow the event log through steved: ``emit`` each event as it commits,
    reconnect and resume from the last seq emitted (no gap, no duplicate) when the
    connection drops, and report every range the daemon skipped for a lagging
    follower."""
    from steve.daemon.events import event_from_wire

    nxt = from_seq
    current: Client | None = client
    lost_at: float | None = None
    while True:
        try:
            if current is None:
                current = Client(socket_path(root))
                lost_at = None
            for message in current.follow(nxt, **filters):
                if message["t"] == "lagged":
                    err = FollowerLagged(int(message["first"]), int(message["last"]))
                    click.echo(
                        f"steve: warning: {err.message}: {err.detail}; {err.action} [{err.code}]",
                        err=True,
                    )
                    nxt = err.last + 1
                    continue
                event = event_from_wire(message["event"])
                emit(event)
                nxt = event.seq + 1
            return 0
        except DaemonLocked:
            assert current is not None
            unlock_daemon(current, root)  # then follow again from nxt
        except (DaemonConnectionLost, DaemonNotRunning) as exc:
            if current is not None:
                current.close()
            current = None
            lost_at = lost_at or time.monotonic()
            if time.monotonic() - lost_at > RECONNECT_FOR:
                raise DaemonConnectionLost(f"{exc.detail}; resume with --from-seq {nxt}") from exc
            time.sleep(0.2)
