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


def _split(argv: list[str]) -> tuple[str | None, bool, list[str]]:
    """The global options click reads before the command: ``-C``/``--repo``, ``-q``;
    and the rest of the command line."""
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
    return repo, quiet, argv[i:]


def parse(argv: list[str], environ: dict[str, str] | os._Environ[str]) -> Line | None:
    """The command line as click would read it, or None when it is not one the fast
    path answers (click then reads it, and answers usage questions)."""
    if "_STEVE_COMPLETE" in environ:
        return None
    repo, quiet, rest = _split(argv)
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


class EarlyKey:
    """A key being derived from the passphrase on a thread, started before click and
    the command modules are imported (:func:`derive_early`)."""

    __slots__ = ("_key", "_thread", "passphrase", "root")

    def __init__(self, root: Path, passphrase: str, derive: Callable[[], bytes]) -> None:
        import threading

        self.root = root
        self.passphrase = passphrase
        self._key: bytes | None = None
        # a daemon: a command that never asks for the key does not wait for it
        self._thread = threading.Thread(target=self._run, args=(derive,), daemon=True)
        self._thread.start()

    def _run(self, derive: Callable[[], bytes]) -> None:
        try:
            self._key = derive()
        except BaseException:  # noqa: BLE001 - the command derives again and reports
            self._key = None

    def key(self) -> bytes | None:
        """The derived key (waits for it), or None if the derivation failed."""
        self._thread.join()
        return self._key


_early: EarlyKey | None = None


def derive_early(argv: list[str], environ: dict[str, str] | os._Environ[str]) -> None:
    """Start deriving the repository's key now for the bulk commands that open their
    repository while reading their input (``hash-object -w --stdin-paths``,
    ``cat-file --batch`` from a regular file), when the passphrase comes from the
    environment and no key is cached: Argon2id (which releases the GIL) then
    overlaps the imports that come before the command.  Anything unusual starts
    nothing; :func:`early_key` hands the key over only for the same repository and
    passphrase, and the command derives as always otherwise."""
    global _early
    repo, _, rest = _split(argv)
    if not rest or "_STEVE_COMPLETE" in environ:
        return
    if rest[0] == "hash-object":
        if "-w" not in rest or "--stdin-paths" not in rest:
            return
    elif rest[0] == "cat-file":
        if not any(a.startswith("--batch") for a in rest[1:]) or not _stdin_is_file():
            return
    else:
        return
    if environ.get("STEVE_KEY_FILE"):
        return  # read (and reported) by the command itself
    passphrase = environ.get("STEVE_PASSPHRASE")
    if not passphrase:
        return
    try:
        from steve.repo import Repo, find_repository
        from steve.store import keycache
        from steve.store.kdf import derive_key, key_matches

        if repo is None:
            repo = environ.get("STEVE_DIR") or None
        root = Path(repo) if repo is not None else find_repository(Path.cwd())
        if (root / ".steve" / "steved.sock").exists():
            return  # steved serves it: the command goes there (steve.cli.forward)
        config = Repo.read_config(root)  # refuses tampered KDF parameters before Argon2
        cached = keycache.cached_key(config.repository_id)
        if cached is not None and key_matches(cached, config.key_check):
            return
        passphrase.encode("utf-8")  # undecodable: the command reports it
        params = config.kdf
        _early = EarlyKey(root.resolve(), passphrase, lambda: derive_key(passphrase, params))
    except Exception:  # noqa: BLE001 - the command opens the repository as always
        return


def early_key(root: Path, passphrase: str) -> bytes | None:
    """The key :func:`derive_early` derived for ``root`` and ``passphrase`` (waits for
    it), checked against the repository's key check as it is now; None otherwise."""
    global _early
    early, _early = _early, None
    if early is None or early.passphrase != passphrase:
        return None
    try:
        if early.root != root.resolve():
            return None
        key = early.key()
        if key is None:
            return None
        from steve.repo import Repo
        from steve.store.kdf import key_matches

        return key if key_matches(key, Repo.read_config(root).key_check) else None
    except Exception:  # noqa: BLE001 - the command derives again and reports
        return None


def _stdin_is_file() -> bool:
    import stat

    try:
        return stat.S_ISREG(os.fstat(0).st_mode)
    except OSError:
        return False
