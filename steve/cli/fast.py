"""The start-up fast path: the hottest read-only commands without click.

``steve cat-file -t|-s|-e|-p REV`` and ``steve log --oneline`` are what
scripts call most, and a short command's cost is mostly start-up: importing
click and the command modules.  :func:`run` answers exactly these command
lines (with the global ``-C DIR``/``--repo DIR``/``--repo=DIR`` and
``-q``/``--quiet``) when the repository's key is in the kernel keyring, and
returns None for anything else, so that click runs the command as always.

Same output, same exit codes: the answer is computed before anything is
written, so whenever the fast path meets anything unusual (a usage question,
an environment it does not read, a terminal on both stdout and stderr where
the homely layer may add lines, no cached key, events waiting in the outbox,
any error) it closes what it opened and returns None, and the full path runs
the command from the start and reports as it always does.  Only a failure
after ``log`` has written its first line is reported from here, through the
full path's own error handling (:func:`steve.cli.app.exit_after_command`).
``tests/cli/test_fast.py`` checks that both paths agree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from steve.cli.common import BlockWriter, identity, is_terminal, write_log

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from steve.objects.summary import HeadRow
    from steve.repo import Repo

CAT_MODES = ("-t", "-s", "-p", "-e")
ONELINE_FORMAT = "%h %k %s"  # steve log --oneline (steve.cli.porcelain.log)
PRETTY_MAX = 1 << 20
"""``cat-file -p`` of a blob larger than this streams through the full path."""
_EXIT_FALSE = 1  # steve.errors.EXIT_FALSE (not imported: steve.errors is large)


class Line:
    """A command line the fast path answers: the repository option, ``--quiet`` and
    the command (``("cat-file", mode, rev)`` or ``("log", "--oneline")``)."""

    __slots__ = ("command", "quiet", "repo_dir")

    def __init__(self, repo_dir: Path | None, quiet: bool, command: tuple[str, ...]) -> None:
        self.repo_dir = repo_dir
        self.quiet = quiet
        self.command = command


def parse(argv: list[str], environ: dict[str, str] | os._Environ[str]) -> Line | None:
    """The command line as click would read it, or None when it is not one the fast
    path answers (click then reads it, and answers usage questions)."""
    if "_STEVE_COMPLETE" in environ:
        return None
    repo: str | None = None
    quiet = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-C", "--repo") and repo is None and i + 1 < len(argv):
            repo = argv[i + 1]
            i += 2
        elif a.startswith("--repo=") and repo is None:
            repo = a[len("--repo=") :]
            i += 1
        elif a in ("-q", "--quiet"):
            quiet = True
            i += 1
        else:
            break
    rest = argv[i:]
    if len(rest) == 3 and rest[0] == "cat-file":
        mode, rev = (rest[1], rest[2]) if rest[1] in CAT_MODES else (rest[2], rest[1])
        if mode not in CAT_MODES or not rev or rev.startswith("-"):
            return None
        command: tuple[str, ...] = ("cat-file", mode, rev)
    elif rest == ["log", "--oneline"]:
        command = ("log", "--oneline")
    else:
        return None
    env_quiet = environ.get("STEVE_QUIET", "")
    if env_quiet not in ("", "0", "1"):
        return None  # click's boolean parsing (or its usage error)
    quiet = quiet or env_quiet == "1"
    if repo is None:
        repo = environ.get("STEVE_DIR") or None  # click: an empty variable is unset
    if repo is None:
        return Line(None, quiet, command)
    repo_dir = Path(repo)
    if not repo or repo.startswith("-") or (repo_dir.exists() and not repo_dir.is_dir()):
        return None  # a usage error, or a value click reads differently
    return Line(repo_dir, quiet, command)


def _on_terminal() -> bool:
    try:
        return os.isatty(sys.stdout.fileno()) and os.isatty(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False


def open_cached(line: Line) -> Repo | None:
    """The repository as ``Context.repo`` opens it, when the kernel keyring holds its
    key and no events wait in its outbox; else None (nothing left open)."""
    from steve.repo import Repo, find_repository
    from steve.store import keycache
    from steve.store.kdf import key_matches

    root = line.repo_dir if line.repo_dir is not None else find_repository(Path.cwd())
    config = Repo.read_config(root)
    key = keycache.cached_key(config.repository_id)
    if key is None or not key_matches(key, config.key_check):
        return None  # the passphrase path (or steved, which holds the key)
    repo = Repo.open(root, key=key, identity=identity())
    try:
        if repo.undelivered():
            repo.close()
            return None  # the full path delivers them first
    except BaseException:
        repo.close()
        raise
    return repo


def run(argv: list[str]) -> int | None:
    """Run ``argv`` on the fast path and return its exit code, or None when the full
    path must run it (nothing was written then)."""
    line = parse(argv, os.environ)
    if line is None or _on_terminal():
        return None
    try:
        repo = open_cached(line)
    except KeyboardInterrupt as exc:
        _fail(line, None, exc)
    except Exception:  # noqa: BLE001 - the full path opens it again and reports
        return None
    if repo is None:
        return None
    try:
        if line.command[0] == "cat-file":
            answer = _cat_file(repo, line.command[1], line.command[2])
            if answer is None:
                repo.close()
                return None
            if isinstance(answer, int):
                repo.close()
                return answer
            sys.stdout.buffer.write(answer)
        else:
            rows = _log_rows(repo)
            out = BlockWriter(sys.stdout.buffer, flush_each=is_terminal(sys.stdout.buffer))
            try:
                write_log(rows, _render(), out, is_terminal(sys.stdout.buffer))
            except BaseException as exc:  # noqa: BLE001 - reported as the full path does
                _fail(line, repo, exc)
    except KeyboardInterrupt as exc:
        _fail(line, repo, exc)
    except BrokenPipeError as exc:
        _fail(line, repo, exc)
    except Exception:  # noqa: BLE001 - nothing written: the full path runs and reports
        repo.close()
        return None
    repo.close()
    return 0


def _cat_file(repo: Repo, mode: str, rev: str) -> bytes | int | None:
    """What ``cat-file`` writes (or its exit code for ``-e``), None: ask the full path."""
    if mode == "-e":
        repo.rev_parse(rev)  # a missing object: the full path exits 1 (EXIT_FALSE)
        return 0
    oid = repo.rev_parse(rev)
    if mode == "-t":
        return repo.object_type(oid).value.encode() + b"\n"
    info = repo.object_info(oid)
    if mode == "-s":
        return str(info.size).encode() + b"\n"
    if info.size > PRETTY_MAX:
        return None  # streamed by the full path
    from steve.objects.model import ObjectType

    if info.type is ObjectType.BLOB:
        return b"".join(repo.iter_content(oid))
    from steve.cli.plumbing import pretty

    return b"".join(pretty(repo, oid))


def _render() -> Callable[[HeadRow], str]:
    from steve.porcelain.history import row_formatter

    return row_formatter(ONELINE_FORMAT)


def _log_rows(repo: Repo) -> Iterator[HeadRow]:
    """The rows ``log --oneline`` prints, the first one read already (an error up to
    there leaves nothing written: the full path runs)."""
    from steve.porcelain.history import walk_rows
    from steve.porcelain.log import log_starts

    rows = walk_rows(repo, log_starts(repo, ()))
    first = next(rows, None)
    if first is None:
        return iter(())
    return _chain(first, rows)


def _chain(first: HeadRow, rows: Iterator[HeadRow]) -> Iterator[HeadRow]:
    yield first
    yield from rows


def _fail(line: Line, repo: Repo | None, exc: BaseException) -> NoReturn:
    """``exc`` raised by the command: what the full path does with it (counted in the
    repository, the repository closed, then reported; steve.cli.app)."""
    from steve.cli.app import Context, count_error, exit_after_command
    from steve.errors import SteveError

    state = Context(line.repo_dir, line.quiet, command=line.command[0])
    if repo is not None:
        state.attach(repo)
    state.failure = exc
    try:
        if isinstance(exc, SteveError):
            count_error(state, exc)  # F-ERR-006, best effort
    finally:
        try:
            state.afterwards()
        finally:
            state.close()
    exit_after_command(exc)
