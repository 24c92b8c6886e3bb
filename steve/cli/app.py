"""The CLI shell: the click group, repository opening and the one error mapper.

Only this package reads ``STEVE_*`` environment variables and talks to the
terminal.  Environment:

``STEVE_DIR``            repository directory (else discovered upward from cwd)
``STEVE_PASSPHRASE``     passphrase (automation)
``STEVE_KEY_FILE``       file whose first line is the passphrase
``STEVE_AUTHOR_NAME``    identity recorded in reflogs and tags
``STEVE_AUTHOR_EMAIL``
``STEVE_LOG``            JSON Lines log level (debug, info, warning, error); unset: no logs
``STEVE_LOG_FILE``       append the JSON Lines logs to this file instead of stderr
``STEVE_IDENTITY_DIR``   the signing identity's directory (default ~/.config/steve)
``STEVE_SIGNING_PASSPHRASE`` the signing key's passphrase (automation)
``STEVE_NEW_PASSPHRASE`` the new passphrase of `steve rekey` (automation)
``STEVE_NEW_KEY_FILE``   file whose first line is that new passphrase
``STEVE_KILL_SWITCH``    1: the policy gate's kill switch is on for this command
``STEVE_QUIET``          1: as ``--quiet`` (no progress, no friendly lines)
``STEVE_TERMINAL``       set by the client on a command it forwards to steved: 1 when a
                         person reads its output (the homely layer's friendly lines)
``STEVE_SIGNING_PASSPHRASE_<NAME>`` the passphrase of the named identity NAME (co-signing)
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

import click

from steve.cli.common import BlockWriter as BlockWriter
from steve.cli.common import identity as identity
from steve.cli.common import is_regular_file as is_regular_file
from steve.cli.common import is_terminal as is_terminal
from steve.errors import (
    EXIT_INTERNAL,
    EXIT_USAGE,
    BadPassphrase,
    InternalError,
    InvalidInput,
    NoPassphrase,
    SteveError,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from steve.cli.identity import CliSigner
    from steve.events import EventLog
    from steve.repo import OpeningRepo, Repo
    from steve.store.base import OutboxEvent


# The vault's values, kept by Context.close for the redaction of an error's text
# printed after the repository is closed (docs/secrets.md).
_VAULT_VALUES: dict[str, bytes] = {}


def redact_error_text(text: str) -> str:
    """``text`` through the one redaction pipeline: the values of the vault of the
    repository this command opened, and the common key shapes."""
    from steve.redact import Redactor

    try:
        return Redactor(_VAULT_VALUES).text(text)
    except SteveError:  # a value the redactor refuses: redact the shapes at least
        return Redactor().text(text)


def report(err: SteveError) -> None:
    """Print ``err`` as STEVE prints every error: the catalogue's human line with the
    facts filled in, the fact, the action, one command to try, the code (all but the
    code redacted; see docs/errors.md)."""
    from steve.messages import render_error

    rendered = render_error(err)
    lines = [f"steve: error: {redact_error_text(rendered.say)}"]
    detail = redact_error_text(err.detail) if err.detail else ""
    lines.extend(f"  {line}" for line in detail.splitlines())  # one fact per line
    lines.append(f"  hint: {err.action}")
    if rendered.try_ is not None:
        lines.append(f"  try: {redact_error_text(rendered.try_)}")
    lines.append(f"  [{err.code}]")
    click.echo("\n".join(lines), err=True)


# The module that defines each command.  The group imports a command's module
# when the command is looked up, so ``steve log`` loads the manifest commands
# and nothing of the container, git or event machinery (start-up time is
# most of a short command's cost).  tests/cli/test_lazy.py keeps this true.
COMMAND_MODULES: dict[str, str] = {
    **dict.fromkeys(
        [
            "cat-file", "for-each-ref", "fsck", "gc", "hash-object", "init", "lock",
            "ls-tree", "reflog", "rev-parse", "show-ref", "symbolic-ref", "tag",
            "unlock", "update-ref", "write-tree",
        ],
        "steve.cli.plumbing",
    ),
    **dict.fromkeys(
        [
            "cat", "cat-manifest", "design", "diff", "freeze", "log", "plan", "run",
            "schema", "status",
        ],
        "steve.cli.porcelain",
    ),
    **dict.fromkeys(["build", "logs", "replay", "test"], "steve.cli.build"),
    **dict.fromkeys(["image", "janitor"], "steve.cli.containers"),
    **dict.fromkeys(["events", "verify"], "steve.cli.events"),
    "identity": "steve.cli.identity",
    **dict.fromkeys(["backup", "rekey", "restore", "vacuum"], "steve.cli.backup"),
    **dict.fromkeys(
        ["attest", "key", "supersede", "supersessions", "verify-attestation", "verify-tag"],
        "steve.cli.trust",
    ),
    **dict.fromkeys(["budget", "llm"], "steve.cli.llm"),
    "secret": "steve.cli.secret",
    "research": "steve.cli.research",
    **dict.fromkeys(["daemon", "ping"], "steve.cli.daemon"),
    **dict.fromkeys(["export-git", "import-git", "verify-git"], "steve.cli.git"),
    **dict.fromkeys(["approvals", "approve", "deny", "deploy", "kill-switch"], "steve.cli.gate"),
    **dict.fromkeys(["completion", "config", "explain", "help"], "steve.cli.ux"),
    "start": "steve.cli.start",
    "tui": "steve.cli.tui",
    "inspect": "steve.cli.inspect",
}  # fmt: skip


class SteveGroup(click.Group):
    """A click group that turns every error into STEVE's format and exit code, and
    loads each command's module on first use (:data:`COMMAND_MODULES`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(COMMAND_MODULES[cmd_name])
        command = self.commands.get(cmd_name)
        if command is not None and "_STEVE_COMPLETE" in os.environ:  # a Tab key: values too
            from steve.cli.completion import attach

            attach(command, cmd_name)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:
            # click suggests among loaded commands only; suggest among all of them
            raise click.exceptions.NoSuchCommand(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BaseException as exc:
            if isinstance(ctx.obj, Context):
                ctx.obj.failure = exc  # for what runs at close (the homely nudges)
                if isinstance(exc, SteveError):
                    count_error(ctx.obj, exc)  # F-ERR-006, best effort
            raise

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            if LENT_REPO.get() is None:  # not already inside steved
                given = args[0] if args else kwargs.get("args")
                argv = list(sys.argv[1:] if given is None else given)
                from steve.cli.forward import forward_if_served

                forwarded = forward_if_served(argv)
                if forwarded is not None:
                    sys.exit(forwarded)
            rv = super().main(*args, **kwargs)
        except click.exceptions.Abort:  # a RuntimeError: before exit_for's internal errors
            click.echo("steve: aborted", err=True)
            sys.exit(130)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
        except REPORTED_ERRORS as exc:
            exit_for(exc)
        print_afterword()
        sys.exit(rv if isinstance(rv, int) else 0)


INTERNAL_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    MemoryError,
    RecursionError,
    ValueError,
    TypeError,
    AssertionError,
    KeyError,
    AttributeError,
    IndexError,
    RuntimeError,
)
"""What a command may raise that :func:`exit_for` reports as an internal error."""
REPORTED_ERRORS: tuple[type[BaseException], ...] = (
    SteveError,
    BrokenPipeError,
    KeyboardInterrupt,
    *INTERNAL_ERRORS,
)
"""What :func:`exit_for` reports."""


def exit_for(exc: BaseException) -> NoReturn:
    """Report ``exc``, raised by a command (its repository already closed), and exit
    as every command does: a STEVE error in its format and code, a closed pipe
    quietly, Ctrl-C as interrupted, a bug as an internal error.  Anything else is
    raised again."""
    if isinstance(exc, SteveError):
        report(exc)
        print_afterword()
        sys.exit(exc.exit_code)
    if isinstance(exc, BrokenPipeError):
        # the reader went away (e.g. `| head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    if isinstance(exc, KeyboardInterrupt):
        click.echo("steve: interrupted", err=True)
        sys.exit(130)
    if isinstance(exc, INTERNAL_ERRORS):
        report(InternalError("internal error", f"{type(exc).__name__}: {exc}"))
        sys.exit(EXIT_INTERNAL)
    raise exc


def exit_after_command(exc: BaseException) -> NoReturn:
    """Exit as the group does when a command raised ``exc`` (its repository already
    closed): click's ``Command.main`` first (Ctrl-C or end of input become Abort, a
    closed pipe exits 1 with the streams pacified), then :meth:`SteveGroup.main`.
    For a command run outside click (steve.cli.fast)."""
    if isinstance(exc, (EOFError, KeyboardInterrupt)):
        click.echo(file=sys.stderr)
        click.echo("steve: aborted", err=True)
        sys.exit(130)
    if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
        from click.utils import PacifyFlushWrapper

        sys.stdout = cast(TextIO, PacifyFlushWrapper(sys.stdout))
        sys.stderr = cast(TextIO, PacifyFlushWrapper(sys.stderr))
        sys.exit(1)
    exit_for(exc)


AFTERWORD: list[str] = []
"""Lines printed after the command's result or error: the homely nudges."""


def print_afterword() -> None:
    if AFTERWORD:
        click.echo("\n".join(AFTERWORD), err=True)
        AFTERWORD.clear()


# Errors about the repository's database itself: nothing can be written to it then.
UNCOUNTED_FAMILIES = ("STEVE-REPO-", "STEVE-KEY-", "STEVE-STOR-")
COUNT_WAIT = 0.2
"""Seconds an error count waits for the write lock before giving up."""
COUNT_CALL = 1.0
"""Seconds an error count waits for steved's answer before giving up."""


def count_error(state: Context, err: SteveError) -> bool:
    """Count ``err``'s code in the repository the failed command opened (F-ERR-006),
    best effort: never raises, waits at most :data:`COUNT_WAIT` for the write lock,
    skips errors about the database itself and a repository the command did not
    open; while steved serves the repository the count goes through it (writes go
    through the daemon) or is skipped.  Returns whether the count was written."""
    repo = state._repo
    if repo is None or err.code.startswith(UNCOUNTED_FAMILIES):
        return False
    try:
        from steve.porcelain.secrets import redactor_for

        message = redactor_for(repo).text(err.message)
        if LENT_REPO.get() is None and repo.root is not None:
            served = _count_through_daemon(repo.root, err.code, message)
            if served is not None:
                return served
        repo.count_error(err.code, message, now=int(time.time()), wait=COUNT_WAIT)
    except Exception:  # noqa: BLE001 - counting must never mask the error being reported
        return False
    return True


def _count_through_daemon(root: Path, code: str, message: str) -> bool | None:
    """When a live steved serves the repository, count through it (`steve inspect
    record-error`, run on its writer) and say whether that worked; None when no
    daemon serves it (the caller writes directly)."""
    from steve.cli.forward import forwarded_env, socket_path

    sock = socket_path(root)
    if not sock.exists():
        return None
    from steve.daemon.client import Client

    try:
        client = Client(sock, timeout=COUNT_CALL)
    except SteveError:
        return None  # a stale socket: nobody serves it
    argv = ["inspect", "record-error", code, "--message", message]
    try:
        with client:
            code_ = client.run(
                argv, cwd=str(root), env=forwarded_env(), stdin=None, write=lambda fd, data: None
            )
    except (SteveError, OSError):
        return False  # busy, locked or gone: skipped, never written beside it
    return code_ == 0


class EventSink:
    """The CLI's event sink (:class:`steve.repo.EventSink`): opens the event log when
    the first committed events leave the outbox (read-only commands never load
    it) and closes it at exit."""

    def __init__(self, repo: Repo, correlation_id: str) -> None:
        self.repo = repo
        self.correlation_id = correlation_id
        self.log: EventLog | None = None
        self._log_stream: TextIO | None = None
        self._signer: CliSigner | None = None

    def open(self) -> EventLog:
        if self.log is None:
            from steve.cli.identity import CliSigner
            from steve.events import EventLog, JsonLogger

            logger = None
            level = os.environ.get("STEVE_LOG")
            if level:
                target = os.environ.get("STEVE_LOG_FILE")
                if target:
                    try:
                        self._log_stream = Path(target).open("a", encoding="utf-8")  # noqa: SIM115
                    except OSError as exc:
                        from steve.errors import InvalidInput

                        raise InvalidInput("cannot open STEVE_LOG_FILE", str(exc)) from exc
                stream = self._log_stream or sys.stderr
                logger = JsonLogger(stream, level=level, correlation_id=self.correlation_id)
            from steve.porcelain.secrets import redactor_for

            self.log = EventLog.for_repo(
                self.repo,
                correlation_id=self.correlation_id,
                actor=str(identity()),
                logger=logger,
                signer=(signer := CliSigner()),
                redactor=redactor_for(self.repo),
            )
            self._signer = signer
        return self.log

    def deliver(self, source: str, events: Sequence[OutboxEvent]) -> int:
        return self.open().deliver(source, events)

    def close(self) -> None:
        try:
            if self.log is not None:
                if self._signer is not None and self._signer.public_key is not None:
                    from steve.cli.identity import record_newest_checkpoint

                    self.log.flush()
                    record_newest_checkpoint(self.log, self._signer.public_key, self.repo)
                self.log.close()
        finally:
            self.log = None
            if self._signer is not None and self._signer.error is not None:
                err = self._signer.error
                click.echo(
                    f"steve: warning: an event-log segment was sealed without a signature: "
                    f"{err.message} ({err.detail})",
                    err=True,
                )
            self._signer = None
            if self._log_stream is not None:
                self._log_stream.close()
                self._log_stream = None


LENT_REPO: ContextVar[LentRepo | None] = ContextVar("steve_lent_repo", default=None)
"""Set by steved while it runs a forwarded command: the repository it holds open."""


@dataclass
class LentRepo:
    root: Path
    repo: Repo
    correlation_id: str


@dataclass
class Context:
    repo_dir: Path | None
    quiet: bool = False  # --quiet: no progress, no friendly lines; results and errors only
    command: str | None = None  # the subcommand's name
    failure: BaseException | None = None  # what the command raised, if anything
    _repo: Repo | None = None
    _opening: OpeningRepo | None = None  # open_early(): the repository opening meanwhile
    correlation_id: str = field(default_factory=lambda: os.urandom(16).hex())
    _events: EventSink | None = None

    def root(self) -> Path:
        from steve.repo import find_repository

        if self.repo_dir is not None:
            return self.repo_dir
        return find_repository(Path.cwd())

    def open_early(self) -> None:
        """Start opening the repository on a background thread: the key derivation
        then overlaps the command's own preparation (reading and parsing its input);
        :meth:`repo` finishes the opening.  Errors found before the derivation starts
        (not a repository, no passphrase) are raised here."""
        if self._repo is None and self._opening is None and LENT_REPO.get() is None:
            self._opening = begin_open_repo(self.root())

    def repo_ready(self) -> bool:
        """Whether :meth:`repo` would return without waiting for a background open."""
        return self._opening is None or self._opening.done()

    def repo(self) -> Repo:
        if self._repo is None:
            lent = LENT_REPO.get()
            if lent is not None:
                root = self.root().resolve()
                if root != lent.root:
                    from steve.errors import DaemonWrongRepository

                    raise DaemonWrongRepository(str(lent.root), str(root))
                repo = self._repo = lent.repo
                repo.identity = identity()
                self.correlation_id = lent.correlation_id  # the daemon's log lines carry it
            elif self._opening is not None:
                opening, self._opening = self._opening, None
                repo = self._repo = opening.result()
            else:
                repo = open_repo(self.root())
            self.attach(repo)
        assert self._repo is not None
        return self._repo

    def attach(self, repo: Repo) -> None:
        """Make ``repo`` (just opened) this command's repository: its events go to the
        event log of this invocation, and events left in the outbox are delivered."""
        self._repo = repo
        self._events = EventSink(repo, self.correlation_id)
        repo.events.sink = self._events
        repo.events.correlation_id = self.correlation_id
        repo.events.actor = str(repo.identity)
        if repo.undelivered():  # events a killed or failed drain left behind
            repo.drain()

    def event_log(self) -> EventLog:
        """The repository's event log (one correlation id per CLI invocation)."""
        self.repo()
        assert self._events is not None
        return self._events.open()

    def afterwards(self) -> None:
        """At close, while the repository is still open: the homely nudges due after a
        command a person ran on a terminal (steve.cli.homely), for :func:`print_afterword`."""
        if self._repo is None or self.quiet or LENT_REPO.get() is not None:
            return
        if self.failure is not None and not isinstance(self.failure, SteveError):
            return  # interrupted, or a bug: no nudge
        try:  # the common case, output to a pipe or file, decided before any import
            if not (os.isatty(sys.stdout.fileno()) and os.isatty(sys.stderr.fileno())):
                return
        except (OSError, ValueError, AttributeError):
            return
        from steve.cli.forward import socket_path
        from steve.cli.homely import interactive, nudges

        root = self._repo.root
        if root is not None and socket_path(Path(root).resolve()).exists():
            return  # steved is the one writer while it runs: no bookkeeping from here
        if interactive():
            AFTERWORD.extend(nudges(self))

    def close(self) -> None:
        if self._opening is not None:  # opened early, never used
            opening, self._opening = self._opening, None
            with contextlib.suppress(BaseException):
                opening.close()
        try:
            if self._events is not None:
                self._events.close()
                self._events = None
            if self._repo is not None and self._repo.events.error is not None:
                warn_undelivered(self._repo.events.error)
        finally:
            if self._repo is not None:
                with contextlib.suppress(SteveError):  # a damaged database reports itself
                    _VAULT_VALUES.update(
                        (r.name, r.data) for r in self._repo.list_secrets() if r.kind == "value"
                    )
                lent = LENT_REPO.get()
                if lent is not None and lent.repo is self._repo:
                    self._repo.events.sink = None  # steved keeps it open
                else:
                    self._repo.close()
                self._repo = None


def warn_undelivered(err: SteveError) -> None:
    """The change was committed; its events wait in steve.db's outbox."""
    click.echo(
        "steve: warning: the change is committed, but its events could not be written "
        f"to the event log ({err.message}: {err.detail}); they wait in the outbox of "
        "steve.db and are delivered by the next command that can write the log "
        f"[{err.code}]",
        err=True,
    )


INT64_MAX = 2**63 - 1
"""The largest integer an option may take (what SQLite's INTEGER holds)."""


def frozen_time() -> tuple[int, int]:
    """(unix seconds, offset minutes): SOURCE_DATE_EPOCH with +0000 when set, else now."""
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde is not None and sde.strip():
        from steve.objects.model import TIME_MAX

        text = sde.strip()
        # ASCII digits only (str.isdigit also accepts other scripts' digits), and
        # no more than an object time may hold (see steve.objects.model.TIME_MAX)
        digits = text.lstrip("0") or "0"
        if not (text.isascii() and text.isdigit()) or len(digits) > 12 or int(digits) > TIME_MAX:
            raise InvalidInput(
                "invalid SOURCE_DATE_EPOCH", f"{sde!r} is not unix seconds in 0..{TIME_MAX}"
            )
        return int(text), 0
    from steve.refs.refs import local_offset_minutes

    now = int(time.time())
    return now, local_offset_minutes(now)


def passphrase(
    confirm: bool = False,
    *,
    file_var: str = "STEVE_KEY_FILE",
    env_var: str = "STEVE_PASSPHRASE",
    prompt: str = "STEVE passphrase",
    missing: str | None = None,
) -> str:
    """The passphrase from ``$file_var`` (its first line), ``$env_var`` or a TTY prompt
    (``confirm``: asked twice); NoPassphrase (``missing``: its detail) otherwise.  The
    defaults read the repository's passphrase; `steve rekey` reads the new one."""
    key_file = os.environ.get(file_var)
    if key_file:
        try:
            with Path(key_file).open("rb") as fh:
                raw = fh.readline().rstrip(b"\r\n")
        except OSError as exc:
            raise NoPassphrase(f"{file_var} {key_file}: {exc.strerror}") from exc
        if not raw:
            raise NoPassphrase(f"{file_var} {key_file} is empty")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadPassphrase(f"{file_var} {key_file}") from None
    env = os.environ.get(env_var)
    if env:
        try:
            env.encode("utf-8")  # undecodable bytes arrive as lone surrogates
        except UnicodeEncodeError:
            raise BadPassphrase(env_var) from None
        return env
    if sys.stdin.isatty() and sys.stderr.isatty():
        value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
        if value:
            return value
    raise NoPassphrase() if missing is None else NoPassphrase(missing)


def open_repo(root: Path) -> Repo:
    """Open with the cached key when `steve unlock` left one, else derive it."""
    from steve.repo import Repo

    key = _cached_key(root)
    if key is not None:
        return Repo.open(root, key=key, identity=identity())
    from steve.cli.fast import early_key

    secret = passphrase()
    return _open_derived(root, secret, early_key(root, secret))


def begin_open_repo(root: Path) -> OpeningRepo:
    """:func:`open_repo` on a background thread (the passphrase, when needed, is read
    or prompted for here, first)."""
    from steve.repo import OpeningRepo, Repo

    key = _cached_key(root)
    if key is not None:
        return Repo.open_background(root, key=key, identity=identity())
    from steve.cli.fast import early_key

    secret = passphrase()
    return OpeningRepo(lambda: _open_derived(root, secret, early_key(root, secret)))


def _open_derived(root: Path, secret: str, key: bytes | None) -> Repo:
    """Open with the key derived early from ``secret`` (steve.cli.fast.derive_early),
    else (none, or a rekey changed it meanwhile) by deriving it now, as always."""
    from steve.errors import WrongKey
    from steve.repo import Repo

    if key is not None:
        try:
            return Repo.open(root, key=key, identity=identity())
        except WrongKey:
            pass  # a rekey ended in between: derive with what is stored now
    return Repo.open(root, passphrase=secret, identity=identity())


def _cached_key(root: Path) -> bytes | None:
    """The key `steve unlock` cached for the repository at ``root``, if it matches."""
    from steve.repo import Repo
    from steve.store import keycache
    from steve.store.kdf import key_matches

    config = Repo.read_config(root)
    key = keycache.cached_key(config.repository_id)
    if key is not None and key_matches(key, config.key_check):
        return key
    return None


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"steve: {message}", err=True)
    sys.exit(code)


@click.group(
    cls=SteveGroup,
    invoke_without_command=True,  # bare `steve`: the guided run or the help (steve.cli.start)
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--repo",
    "-C",
    "repo_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="STEVE_DIR",
    help="Repository directory (default: search upward from cwd).",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    envvar="STEVE_QUIET",
    help="No progress and no friendly lines: only results and errors.",
)
@click.version_option(package_name="steve", prog_name="steve")
@click.pass_context
def cli(ctx: click.Context, repo_dir: Path | None, quiet: bool) -> None:
    """STEVE: an encrypted, content-addressed record of software work.

    Plumbing commands follow git's names and flags.  Exit codes: 0 ok,
    1 "no" (cat-file -e, diff -q), 2 usage, 3 repository, 4 key, 5 not found,
    6 invalid input, 7 ref update rejected, 8 busy, 9 corrupt, 10 internal,
    11 engine unavailable, 12 refused by policy, 13 a step or test failed,
    130 interrupted (Ctrl-C).
    """
    state = Context(repo_dir, quiet, command=ctx.invoked_subcommand)
    ctx.obj = state
    ctx.call_on_close(state.close)
    ctx.call_on_close(state.afterwards)  # runs first (last in, first out): repo still open
    if ctx.invoked_subcommand is None:
        from steve.cli.start import bare

        bare(ctx)


pass_state = click.make_pass_decorator(Context)


def load_commands() -> dict[str, click.Command]:
    """Every command by name, with all command modules imported (help, doc checks)."""
    for module in sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(module)
    return dict(cli.commands)
