"""One writer, two ways in: which commands go through a running steved.

:data:`ROUTES` is the one table.  While steved serves the repository, every
``WRITE`` command is forwarded to it (argv, cwd, the ``STEVE_*`` environment,
stdin on demand) and runs there on its single writer thread; a ``READ``
command runs directly when the kernel keyring holds the repository's key
(``steve unlock``: no Argon2id), else it is forwarded too (the daemon holds
the key); ``LOCAL`` commands never are (they need no key, or manage the key
or the daemon themselves).  Without a daemon every command runs directly,
as before.  ``tests/daemon/test_routing.py`` checks that every registered
command and subcommand has a route.

This module is imported on every start-up: it reads the environment and one
``stat`` of the socket path, and imports the client only when a daemon runs.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from steve.daemon.client import Client


class Route(Enum):
    WRITE = "write"
    READ = "read"
    LOCAL = "local"


W, R, L = Route.WRITE, Route.READ, Route.LOCAL

ROUTES: dict[str, Route | dict[str, Route]] = {
    "build": W, "design": W, "export-git": W, "freeze": W, "gc": W, "hash-object": W,
    "import-git": W, "plan": W, "replay": W, "symbolic-ref": W, "tag": W,
    "test": W, "update-ref": W, "write-tree": W, "janitor": W,
    "cat": R, "cat-file": R, "cat-manifest": R, "diff": R, "for-each-ref": R, "fsck": R,
    "log": R, "logs": R, "ls-tree": R, "reflog": R, "rev-parse": R, "show-ref": R,
    "status": R, "verify": R,
    "init": L, "unlock": L, "lock": L, "schema": L, "verify-git": L, "ping": L, "start": L,
    "tui": L,  # interactive: opens the repository itself and runs its commands as children
    "daemon": {"": L, "start": L, "stop": L, "status": L},
    "identity": {"": L, "init": L, "show": L},
    "events": {"": R, "verify": R, "append": W, "seal": W, "pin-key": W},
    "run": {"": R, "list": R, "show": R, "transitions": R, "new": W, "goto": W, "switch": W},
    "image": {"": R, "ls": R, "build": W, "import": W, "sign": W},
    # the LLM layer (issue 14): exchanges, budgets and the config are writes
    "llm": {"": R, "log": R, "show": R, "ask": W, "use": W},
    "budget": {"": R, "show": R, "set": W},
    # secrets: the value of `secret set` comes on standard input (no prompt through steved)
    "secret": {"": R, "list": R, "set": W, "rm": W},
    # trust: identities live outside the repository; attestations and records inside
    "key": {"": L, "show": L, "add": L, "list": L, "rotate": W, "record-rotations": W},
    "attest": W, "supersede": W, "supersessions": R, "verify-tag": R,
    "verify-attestation": L,
    # the policy gate and deploy (deploy through steved cannot ask: it needs an approval)
    "approvals": R, "approve": W, "deny": W, "deploy": W, "kill-switch": W,
    # RESEARCH (issue 17): `steve research FILE` freezes; fetches, imports and searches
    # store records (a search records its query and results)
    "research": {"": W, "freeze-file": W, "scope": W, "fetch": W, "refresh": W, "import": W,
                 "search": W, "extract": W, "summarize": W, "freeze": W, "show": R},
    # backup and maintenance; rekey needs the repository to itself (stop steved first)
    "backup": W, "vacuum": W, "restore": L, "rekey": L,
    # the human side (issue 18): help and completion need no key; config is the plain file
    "help": L, "completion": L, "config": {"": L, "list": L, "get": L, "set": L},
    "explain": W,  # records the model exchange, like `llm ask`
    # inspect mode (issue 18): reads only (`logs --follow` follows through steved)
    "inspect": {
        "": R, "state": R, "manifests": R, "resources": R, "logs": R, "dag": R,
        "decisions": R, "errors": R, "record-error": W,
    },
}  # fmt: skip
"""Every command's route; a group maps its subcommands ("" for the group alone)."""

FORWARDED_ENV = (
    "SOURCE_DATE_EPOCH", "USER", "LOGNAME", "TZ", "NO_COLOR", "COLUMNS",
    # the model providers' settings (keys stay in memory: never logged or stored)
    "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
)  # fmt: skip
"""Besides ``STEVE_*`` (minus the passphrase variables: the daemon holds the key)."""
NOT_FORWARDED = ("STEVE_PASSPHRASE", "STEVE_KEY_FILE")
_GLOBAL_WITH_VALUE = ("--repo", "-C")
_GLOBAL_FLAGS = ("--quiet", "-q")


def route_of(args: list[str]) -> Route:
    """The route of a command line (global options already removed).  A group's
    subcommand is any later argument naming one: a write wins (routing a read
    through the writer costs time, never correctness)."""
    if not args:
        return L
    entry = ROUTES.get(args[0], L)
    if isinstance(entry, Route):
        return entry
    named = [entry[a] for a in args[1:] if a in entry and a != ""]
    if W in named:
        return W
    return named[0] if named else entry[""]


def split_globals(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the --repo/-C value or None, the rest from the command name on)."""
    repo: str | None = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _GLOBAL_WITH_VALUE and i + 1 < len(argv):
            repo = argv[i + 1]
            i += 2
        elif a.startswith("--repo="):
            repo = a.split("=", 1)[1]
            i += 1
        elif a.startswith("-C") and len(a) > 2:
            repo = a[2:]
            i += 1
        elif a in _GLOBAL_FLAGS:  # forwarded with the rest of argv
            i += 1
        elif a.startswith("-"):
            return repo, []  # --help, --version, or a usage error: click answers
        else:
            return repo, argv[i:]
    return repo, []


def find_root(repo: str | None) -> Path | None:
    """The repository root as the CLI would find it (cheaply: no import of steve.repo)."""
    given = repo or os.environ.get("STEVE_DIR")
    if given:
        root = Path(given).resolve()
        return root if (root / ".steve").is_dir() else None
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / ".steve").is_dir():
            return d
    return None


def socket_path(root: Path) -> Path:
    return root / ".steve" / "steved.sock"


def forwarded_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if (k.startswith("STEVE_") and k not in NOT_FORWARDED) or k in FORWARDED_ENV
    }


def _has_cached_key(root: Path) -> bool:
    from steve.repo import Repo
    from steve.store import keycache
    from steve.store.kdf import key_matches

    try:
        config = Repo.read_config(root)
        key = keycache.cached_key(config.repository_id)
    except Exception:  # noqa: BLE001 - any failure means: no usable cached key
        return False
    return key is not None and key_matches(key, config.key_check)


def forward_if_served(argv: list[str]) -> int | None:
    """Run ``argv`` through steved when one serves its repository and the route says
    so; returns the exit code, or None to run the command directly."""
    repo, rest = split_globals(argv)
    route = route_of(rest)
    if route is L:
        return None
    root = find_root(repo)
    if root is None or not socket_path(root).exists():
        return None
    if route is R and _has_cached_key(root):
        return None
    from steve.daemon.client import Client
    from steve.errors import DaemonNotRunning, DaemonShuttingDown

    try:
        client = Client(socket_path(root))
    except DaemonNotRunning:
        return None  # a stale socket (steved was killed): run directly
    with client:
        if rest[0] == "events" and ("--follow" in rest or "-f" in rest):
            from steve.cli.daemon import follow_through

            return follow_through(client, root, rest[1:])
        if rest[:2] == ["inspect", "logs"] and ("--follow" in rest or "-f" in rest):
            from steve.cli.inspect import follow_through as follow_logs

            return follow_logs(client, root, rest[2:])
        try:
            return _run(client, root, argv)
        except DaemonShuttingDown:
            return None  # nothing ran; the daemon is going away


def _on_terminal() -> bool:
    try:
        return os.isatty(sys.stdout.fileno()) and os.isatty(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False


def _run(client: Client, root: Path, argv: list[str]) -> int:
    from steve.errors import DaemonLocked

    env = forwarded_env()
    # whether a person reads this command's output (the homely layer's friendly lines)
    env["STEVE_TERMINAL"] = "1" if _on_terminal() else "0"
    from steve.cli.progress import FORWARDED_TTY, client_terminal

    terminal = client_terminal()  # steved draws the progress display for us
    env.pop(FORWARDED_TTY, None)
    if terminal is not None:
        env[FORWARDED_TTY] = terminal
    cwd = str(Path.cwd())
    outs = {1: sys.stdout.buffer, 2: sys.stderr.buffer}

    def write(fd: int, data: bytes) -> None:
        stream = outs.get(fd, outs[2])
        stream.write(data)
        stream.flush()

    try:
        return client.run(argv, cwd=cwd, env=env, stdin=sys.stdin.buffer, write=write)
    except DaemonLocked:
        from steve.cli.daemon import unlock_daemon

        unlock_daemon(client, root)
        return client.run(argv, cwd=cwd, env=env, stdin=sys.stdin.buffer, write=write)
