"""Plumbing commands: one library call each, then formatting."""

from __future__ import annotations

import json
import os
import re
import select
import stat
import sys
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import click

from steve.cli.app import (
    INT64_MAX,
    BlockWriter,
    Context,
    cli,
    frozen_time,
    identity,
    is_regular_file,
    pass_state,
    passphrase,
)
from steve.errors import (
    EXIT_CORRUPT,
    EXIT_FALSE,
    AmbiguousPrefix,
    BadRevision,
    InvalidInput,
    MalformedObject,
    ObjectNotFound,
    UnknownRevision,
)

if TYPE_CHECKING:
    from steve.events.fsck import EventsVerified
    from steve.events.store import Checkpoint
    from steve.objects.model import ObjectType, StoredObject
    from steve.objects.oid import ObjectId
    from steve.repo import BatchWriter, Repo
    from steve.store.base import Unset

ZERO_ID = "0" * 64


def out() -> BinaryIO:
    return sys.stdout.buffer


def _flush_per_line() -> bool:
    """git's rule (maybe_flush_or_die): flush each answer unless stdout is a regular
    file, so a process driving us through a pipe sees every line at once."""
    return not is_regular_file(out())


def write_line(text: str) -> None:
    out().write(text.encode() + b"\n")


def parse_oid_or_rev(repo: Repo, text: str) -> ObjectId:
    return repo.rev_parse(text)


# --- init / unlock / lock --------------------------------------------------------------


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def init(state: Context, directory: Path | None) -> None:
    """Create an encrypted repository (.steve/) in DIRECTORY (default: current dir)."""
    from steve.cli.homely import friendly  # lazily: start-up time
    from steve.messages import msg
    from steve.repo import Repo

    root = directory or state.repo_dir or Path.cwd()
    repo = Repo.init(root, passphrase=passphrase(confirm=True), identity=identity())
    steve_dir = repo.steve_dir
    repo.close()
    friendly(state, "repo.initialized")
    write_line(msg("repo.initialized.fact", path=steve_dir))
    if steve_dir is not None:
        from steve.cli.identity import pin_identity

        pin_identity(steve_dir)


DURATION = re.compile(r"^([0-9]{1,12})(?: ?|\.)([a-z]+)(\.ago)?$")
UNIT_SECONDS = {
    **dict.fromkeys(["s", "sec", "secs", "second", "seconds"], 1),
    **dict.fromkeys(["m", "min", "mins", "minute", "minutes"], 60),
    **dict.fromkeys(["h", "hour", "hours"], 3600),
    **dict.fromkeys(["d", "day", "days"], 86400),
    **dict.fromkeys(["w", "week", "weeks"], 604800),
}
DURATION_MAX = 100 * 365 * 86400
"""The longest duration any option takes (100 years)."""


def parse_duration(text: str, maximum: int = DURATION_MAX) -> int:
    """``90s``, ``15m``, ``2h``, ``14d``, ``2w``, ``1 hour``, or git's ``2.weeks.ago``
    -> seconds, at most ``maximum``.  Strict: whole numbers of one unit only
    (``1.5h`` is refused, not read as 15 hours)."""
    m = DURATION.match(text.strip().lower())
    unit = UNIT_SECONDS.get(m.group(2)) if m is not None else None
    if m is None or unit is None:
        raise InvalidInput(
            "invalid duration",
            f"{text[:40]!r}; use a whole number and one unit, e.g. 90s, 15m, 2h, 14d, 2.weeks.ago",
        )
    seconds = int(m.group(1)) * unit
    if not 0 < seconds <= maximum:
        raise InvalidInput(
            "duration out of range", f"{text[:40]!r} is {seconds}s; allowed 1s..{maximum}s"
        )
    return seconds


@cli.command()
@click.option(
    "--ttl", default="15m", show_default=True, help="How long the key stays cached (at most 30d)."
)
@pass_state
def unlock(state: Context, ttl: str) -> None:
    """Cache the derived key in the kernel keyring so later commands skip Argon2id.

    The key is held by the kernel (never in a file) for the given time, for
    processes of the same user; `steve lock` drops it early.
    """
    from steve.cli.homely import say  # lazily: start-up time
    from steve.repo import Repo
    from steve.store import keycache

    root = state.root()
    seconds = parse_duration(ttl, maximum=keycache.MAX_TTL)
    key = Repo.derive_key(root, passphrase())
    low, high = keycache.cache_key(Repo.read_config(root).repository_id, key, seconds)
    say(state, "repo.unlocked", err=True, seconds=seconds, low=low, high=high)


@cli.command()
@pass_state
def lock(state: Context) -> None:
    """Drop the cached key of this repository (see `steve unlock`), and tell a running
    steved to drop the key it holds."""
    from steve.cli.homely import say  # lazily: start-up time
    from steve.repo import Repo
    from steve.store import keycache

    root = state.root()
    dropped = keycache.forget_key(Repo.read_config(root).repository_id)
    say(state, "repo.locked" if dropped else "repo.no_cached_key", err=True)
    from steve.cli.forward import socket_path

    if socket_path(root.resolve()).exists():  # a running steved drops its key too
        from steve.daemon.client import Client
        from steve.errors import DaemonNotRunning

        try:
            with Client(socket_path(root.resolve())) as client:
                reply = client.call("lock")
        except DaemonNotRunning:
            return
        click.echo(
            "steved dropped its key" if reply.get("dropped") else "steved held no key", err=True
        )


# --- hash-object ---------------------------------------------------------------------


def _hash_stream(
    stream: BinaryIO, kind: ObjectType, write: bool, writer: BatchWriter | None
) -> ObjectId:
    from steve.objects.model import ObjectType, decode_object, hash_object
    from steve.repo import BatchWriter, Repo

    if kind is ObjectType.BLOB:
        if write:
            assert isinstance(writer, BatchWriter)
            return writer.add_stream(stream)
        return Repo.hash_stream(stream)
    data = stream.read()
    obj = decode_object(data)  # strict: must be canonical
    if obj.type is not kind:
        raise InvalidInput(f"input is a {obj.type}, not a {kind}")
    oid, _ = hash_object(obj)
    if write:
        assert isinstance(writer, BatchWriter)
        writer.add(obj)
    return oid


@cli.command("hash-object")
@click.option("-w", "write", is_flag=True, help="Write the object into the database.")
@click.option(
    "-t",
    "type_",
    default="blob",
    show_default=True,
    help="Object type; for non-blobs the input must be a canonical STEVE object.",
)
@click.option("--stdin", "use_stdin", is_flag=True, help="Read the object from standard input.")
@click.option("--stdin-paths", is_flag=True, help="Read file paths from stdin, one per line.")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def hash_object(
    state: Context,
    write: bool,
    type_: str,
    use_stdin: bool,
    stdin_paths: bool,
    files: tuple[Path, ...],
) -> None:
    """Compute object ids (and with -w store the objects); one id per line."""
    from steve.objects.model import CHUNK_SIZE, Blob, ObjectType
    from steve.repo import hash_only

    kind = ObjectType.parse(type_)
    if use_stdin and stdin_paths:
        raise click.UsageError("--stdin and --stdin-paths are mutually exclusive")
    if stdin_paths and files:
        raise click.UsageError("--stdin-paths takes no file arguments")
    writer: BatchWriter | None = None
    if write and stdin_paths:
        # bulk: the repository opens (Argon2id) while the first files are read and
        # hashed, and each full batch commits while the next one is prepared
        from steve.repo import BatchWriter

        state.open_early()
        writer = BatchWriter(state.repo, overlap=True)
    elif write:
        writer = state.repo().writer()
    stdout = out()
    # An id is printed only once its object is durable: with -w the ids wait
    # here (with the writer's count of adds that covers their objects) until
    # the batch holding their objects has committed, then go out (and are
    # flushed) together; without -w each id is printed when computed.
    waiting: list[bytes] = []
    tickets: list[int] = []
    flush_each = writer is not None or (stdin_paths and _flush_per_line())

    # the progress display: bulk hashing only (FILE... or --stdin-paths)
    from steve.cli.progress import terminal_progress

    shown = terminal_progress(state) if stdin_paths or len(files) > 1 else None
    hashed = 0
    if shown is not None:
        shown.start("hash-object", len(files) if files else None, unit="files")

    def emit() -> None:
        if not waiting:
            return
        ready = len(waiting) if writer is None else bisect_right(tickets, writer.durable())
        if not ready:
            return
        lines = b"".join(waiting[:ready])
        if shown is not None and shown.shares_stdout:
            with shown.hold():
                stdout.write(lines)
                stdout.flush()
        else:
            stdout.write(lines)
        del waiting[:ready]
        del tickets[:ready]
        if flush_each:
            stdout.flush()

    def commit() -> None:
        if writer is not None:
            writer.flush()
        emit()

    def answer(oid: ObjectId) -> None:
        waiting.append(oid.hex.encode() + b"\n")
        if writer is not None:
            tickets.append(writer.added)
        emit()

    def one(stream: BinaryIO) -> None:
        answer(_hash_stream(stream, kind, write, writer))

    def paths() -> Iterable[Path | bytes]:
        if stdin_paths:
            # commit (and answer) before waiting for more input, so a process
            # driving us through a pipe gets each answer; a fast producer or a
            # file keeps the batches full
            yield from _stdin_lines(before_wait=commit)
        else:
            yield from files

    try:
        try:
            if use_stdin:
                one(sys.stdin.buffer)
            small_blobs = kind is ObjectType.BLOB
            for path in paths():
                fh: BinaryIO | None = None
                try:
                    fd = os.open(path, os.O_RDONLY)
                except OSError as exc:
                    raise _cannot_open(path, exc) from exc
                try:
                    try:
                        content = _small_file(fd, CHUNK_SIZE) if small_blobs else None
                        if content is None:  # large, or not a regular file: streamed
                            fh = open(fd, "rb", closefd=False)  # noqa: SIM115 (closed below)
                    except OSError as exc:  # a directory, or unreadable
                        raise _cannot_open(path, exc) from exc
                    if fh is not None:
                        with fh:
                            one(fh)
                    elif writer is not None:
                        answer(writer.add_blob(cast(bytes, content)))
                    else:
                        answer(hash_only(Blob(cast(bytes, content))))
                finally:
                    os.close(fd)
                if shown is not None:  # the detail: a recent file (decoded now and then)
                    hashed += 1
                    shown.advance(1, os.fsdecode(path) if hashed % 64 == 1 else "")
        except (InvalidInput, MalformedObject):
            commit()  # like git: the inputs before a bad one are stored and answered
            raise
        commit()
    finally:
        if writer is not None:
            writer.discard()  # after an error: a commit still running ends first
        if shown is not None:
            shown.close()


def _cannot_open(path: Path | bytes, exc: OSError) -> InvalidInput:
    return InvalidInput("cannot open file", f"{os.fsdecode(path)}: {exc.strerror}")


def _small_file(fd: int, chunk: int) -> bytes | None:
    """The whole content of the file open at ``fd`` when it is a regular file of less
    than ``chunk`` bytes (one read, no file object), else None: the caller then
    streams it from the start."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size >= chunk:
        return None
    data = os.read(fd, st.st_size + 1)
    if len(data) == st.st_size:  # all of it (a short read of a regular file is its end)
        return data
    while piece := os.read(fd, chunk - len(data)):  # shrank or grew since the fstat
        data += piece
        if len(data) >= chunk:
            os.lseek(fd, 0, os.SEEK_SET)
            return None
    return data


def _stdin_lines(before_wait: Callable[[], None]) -> Iterator[bytes]:
    """Non-empty lines of standard input (bytes, no decoding); ``before_wait`` is
    called whenever the next read would block."""
    stream = sys.stdin.buffer
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a real file (an in-process test runner)
        for raw in stream:
            line = raw.rstrip(b"\n")
            if line:
                yield line
        return
    rest = b""
    while True:
        if not select.select([fd], [], [], 0)[0]:
            before_wait()
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from (line for line in lines if line)
    if rest:
        yield rest


# --- cat-file ------------------------------------------------------------------------


def pretty(repo: Repo, oid: ObjectId) -> Iterable[bytes]:
    from steve.objects.model import Manifest, ObjectType, Tag, Tree
    from steve.objects.values import to_json

    info = repo.object_info(oid)
    if info.type is ObjectType.BLOB:
        yield from repo.iter_content(oid)
        return
    obj: StoredObject = repo.read_object(oid)
    if isinstance(obj, Tree):
        for e in obj.entries:
            yield f"{e.mode.git} {e.mode.object_type} {e.oid.hex}\t{e.name}\n".encode()
    elif isinstance(obj, Tag):
        yield (
            f"object {obj.object.hex}\ntype {obj.object_type}\ntag {obj.name}\n"
            f"tagger {obj.tagger} {obj.time} {_tz(obj.tz)}\n\n{obj.message}"
        ).encode()
        if obj.message and not obj.message.endswith("\n"):
            yield b"\n"
        if obj.signatures:  # as the git export writes them (steve verify-tag checks them)
            yield b"-----BEGIN STEVE SIGNATURES-----\n"
            for entry in obj.signatures:
                yield f"ed25519 {entry.key.hex()} {entry.sig.hex()}\n".encode()
            yield b"-----END STEVE SIGNATURES-----\n"
    elif isinstance(obj, Manifest):
        yield (json.dumps(to_json(obj.to_value()), indent=2, sort_keys=True) + "\n").encode()


def _tz(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    m = abs(minutes)
    return f"{sign}{m // 60:02d}{m % 60:02d}"


@cli.command("cat-file")
@click.option("-t", "show_type", is_flag=True, help="Show the object's type.")
@click.option("-s", "show_size", is_flag=True, help="Show the object's size.")
@click.option("-p", "show_pretty", is_flag=True, help="Pretty-print the object.")
@click.option("-e", "exists", is_flag=True, help="Exit 0 if the object exists, 1 if not.")
@click.option("--raw", "raw", is_flag=True, help="Print the exact stored bytes (b3sum = id).")
@click.option(
    "--batch",
    is_flag=True,
    help="Read revs on stdin; print '<id> <type> <size>' and content for each.",
)
@click.option("--batch-check", is_flag=True, help="Like --batch without the content.")
@click.option("--batch-all-objects", is_flag=True, help="With --batch(-check): every object.")
@click.argument("rev", required=False)
@pass_state
def cat_file(
    state: Context,
    show_type: bool,
    show_size: bool,
    show_pretty: bool,
    exists: bool,
    raw: bool,
    batch: bool,
    batch_check: bool,
    batch_all_objects: bool,
    rev: str | None,
) -> None:
    """Show an object's type, size, content or stored bytes."""
    modes = sum([show_type, show_size, show_pretty, exists, raw, batch, batch_check])
    if batch or batch_check:
        if modes != 1 or rev is not None:
            raise click.UsageError("--batch/--batch-check take no other mode and no REV")
        _cat_batch(state, content=batch, all_objects=batch_all_objects)
        return
    if batch_all_objects:
        raise click.UsageError("--batch-all-objects needs --batch or --batch-check")
    if modes != 1 or rev is None:
        raise click.UsageError("give exactly one of -t, -s, -p, -e, --raw and a REV")
    repo = state.repo()
    if exists:
        try:
            repo.rev_parse(rev)
        except (ObjectNotFound, UnknownRevision, AmbiguousPrefix, BadRevision):
            sys.exit(EXIT_FALSE)
        return
    oid = repo.rev_parse(rev)
    if show_type:
        write_line(repo.object_type(oid).value)
    elif show_size:
        write_line(str(repo.object_info(oid).size))
    elif raw:
        out().write(repo.read_raw(oid))
    else:
        for piece in pretty(repo, oid):
            out().write(piece)


_LOOKAHEAD = 1 << 16
"""Bytes of ids ``cat-file --batch`` reads ahead when stdin is a regular file."""
_OPENING_LOOKAHEAD = 4 << 20
"""Bytes of ids read and parsed ahead while the repository opens (Argon2id)."""
_INLINE_MAX = 1 << 16  # rows up to this size come with the batched lookup
_FULL_HEX = re.compile(rb"[0-9a-f]{64}")

_Parsed = tuple[list[bytes], list["ObjectId | None"]]
"""Non-empty request lines (bytes, line end removed) and, for each that is a full
lowercase hex id, that id."""


def _parse_requests(chunk: list[bytes]) -> _Parsed:
    from steve.objects.oid import ObjectId

    trusted, full = ObjectId.trusted, _FULL_HEX.fullmatch
    lines = [r.rstrip(b"\r\n") for r in chunk]
    lines = [line for line in lines if line]
    oids = [trusted(bytes.fromhex(line.decode())) if full(line) else None for line in lines]
    return lines, oids


def _cat_batch(state: Context, *, content: bool, all_objects: bool) -> None:
    from steve.objects.model import inline_blob_length
    from steve.objects.oid import digest

    stdin = sys.stdin.buffer
    try:
        regular = not all_objects and stat.S_ISREG(os.fstat(stdin.fileno()).st_mode)
    except (OSError, ValueError):  # no file descriptor (an in-memory stream)
        regular = False
    ahead: list[_Parsed] = []
    if regular:
        # a regular file cannot block: while the repository opens (the key is
        # derived on another thread), read and parse the first ids
        state.open_early()
        budget = _OPENING_LOOKAHEAD
        while budget > 0 and not state.repo_ready() and (chunk := stdin.readlines(_LOOKAHEAD)):
            ahead.append(_parse_requests(chunk))
            budget -= sum(map(len, chunk))
    repo = state.repo()

    # One write per 64 KiB at most, even when PYTHONUNBUFFERED makes stdout
    # raw; each record flushed at once when stdout is not a regular file.
    writer = BlockWriter(out(), flush_each=not all_objects and _flush_per_line())
    put = writer.write

    def emit(oid: ObjectId, row: tuple[str, int, bytes | None] | None = None) -> None:
        if row is None:
            got = repo.read_with_info(oid)
            if got is None:
                put(f"{oid.hex} missing\n".encode())
                return
            row = (got[0].value, got[1], got[2])
        type_name, size, data = row
        if not content:
            put(f"{oid.hex} {type_name} {size}\n".encode())
            return
        if (
            data is not None
            and type_name == "blob"
            and inline_blob_length(data) == size
            and digest(data) == oid.raw
        ):  # inline blob, verified: header, content and newline in one piece
            put(b"%s blob %d\n%s\n" % (oid.raw.hex().encode(), size, data[-10 - size : -10]))
            return
        put(f"{oid.hex} {type_name} {size}\n".encode())
        # checks the hash itself and raises CorruptObject
        got = repo.read_with_info(oid)
        if got is None:  # deleted since the lookup
            raise ObjectNotFound(oid.hex)
        for piece in repo.iter_content(oid, got):
            put(piece)
        put(b"\n")

    def answer_rev(line: str) -> None:
        try:
            emit(repo.rev_parse(line))
        except AmbiguousPrefix:
            put(f"{line} ambiguous\n".encode())
        except (UnknownRevision, ObjectNotFound, BadRevision):
            put(f"{line} missing\n".encode())

    if all_objects:
        for info in repo.iter_objects():
            emit(info.oid)
        writer.flush()
        return
    if not regular:
        # a pipe or terminal: answer each line before reading the next (a
        # driver may wait for the answer before it asks again)
        for raw_line in stdin:
            lines, oids = _parse_requests([raw_line])
            if lines:
                oid = oids[0]
                if oid is not None:
                    emit(oid)
                else:
                    answer_rev(lines[0].decode("utf-8", "surrogateescape"))
                writer.end()
        writer.flush()
        return

    def answer_all(parsed: _Parsed) -> None:
        lines, oids = parsed
        found = {
            r[0]: r[1:]
            for r in repo.lookup_objects([o for o in oids if o is not None], _INLINE_MAX)
        }
        for line, oid in zip(lines, oids, strict=True):
            if oid is None:
                answer_rev(line.decode("utf-8", "surrogateescape"))
            elif (row := found.get(oid.raw)) is None:
                put(b"%s missing\n" % line)
            elif (
                content
                and (data := row[2]) is not None
                and row[0] == "blob"
                and inline_blob_length(data) == (size := row[1])
                and digest(data) == oid.raw
            ):  # the commonest answer, as emit() gives it (``line`` is the id's hex)
                put(b"%s blob %d\n%s\n" % (line, size, data[-10 - size : -10]))
            else:
                emit(oid, row)
            writer.end()

    # a regular file cannot block: read ahead and look the full ids up in batches
    for parsed in ahead:
        answer_all(parsed)
    while chunk := stdin.readlines(_LOOKAHEAD):
        answer_all(_parse_requests(chunk))
    writer.flush()


# --- trees ---------------------------------------------------------------------------


@cli.command("write-tree")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@pass_state
def write_tree(state: Context, directory: Path) -> None:
    """Snapshot DIRECTORY into tree and blob objects; print the tree id."""
    write_line(state.repo().write_tree(directory).hex)


@cli.command("ls-tree")
@click.option("-r", "recursive", is_flag=True, help="Recurse into subtrees.")
@click.option("--name-only", is_flag=True, help="List only paths.")
@click.option("-z", "nul", is_flag=True, help="NUL-terminate lines.")
@click.argument("rev")
@pass_state
def ls_tree(state: Context, recursive: bool, name_only: bool, nul: bool, rev: str) -> None:
    """List a tree: '<mode> <type> <id>\\t<path>' per entry (git's format)."""
    from steve.objects.model import ObjectType

    repo = state.repo()
    oid = repo.resolve(rev).oid
    from steve.refs.revparse import peel

    tree_id = peel(repo, oid, ObjectType.TREE, rev)
    end = b"\0" if nul else b"\n"
    stdout = out()
    for e in repo.ls_tree(tree_id, recursive=recursive):
        if name_only:
            stdout.write(e.path.encode() + end)
        else:
            stdout.write(f"{e.mode.git} {e.type.value} {e.oid.hex}\t{e.path}".encode() + end)


# --- refs ----------------------------------------------------------------------------


def _old_value(repo: Repo, text: str | None) -> ObjectId | Unset | None:
    from steve.store.base import ANY

    if text is None:
        return ANY
    if text == "" or text == ZERO_ID:
        return None
    return repo.rev_parse(text)


@cli.command("update-ref")
@click.option("-d", "delete", is_flag=True, help="Delete the ref (NEW is then the expected old).")
@click.option("-m", "message", default="", help="Reflog message.")
@click.option("--no-deref", is_flag=True, help="Update the ref itself, not what it points at.")
@click.argument("ref")
@click.argument("new", required=False)
@click.argument("old", required=False)
@pass_state
def update_ref(
    state: Context,
    delete: bool,
    message: str,
    no_deref: bool,
    ref: str,
    new: str | None,
    old: str | None,
) -> None:
    """Set REF to NEW, only if it currently is OLD (compare-and-swap).

    OLD of 64 zeros or '' means "must not exist yet".  With -d, the second
    argument is the expected old value.
    """
    repo = state.repo()
    if delete:
        if old is not None:
            raise click.UsageError("-d takes REF [OLD]")
        repo.delete_ref(ref, _old_value(repo, new), deref=not no_deref)
        return
    if new is None:
        raise click.UsageError("missing NEW value")
    target = repo.rev_parse(new)
    repo.update_ref(ref, target, _old_value(repo, old), message=message, deref=not no_deref)


@cli.command("symbolic-ref")
@click.option("-d", "delete", is_flag=True, help="Delete the symbolic ref.")
@click.option("-q", "quiet", is_flag=True, help="No error message if NAME is not symbolic.")
@click.option("--short", is_flag=True, help="Print the short name.")
@click.option("-m", "message", default="", help="Reflog message.")
@click.argument("name")
@click.argument("target", required=False)
@pass_state
def symbolic_ref(
    state: Context,
    delete: bool,
    quiet: bool,
    short: bool,
    message: str,
    name: str,
    target: str | None,
) -> None:
    """Read, set or delete a symbolic ref (e.g. HEAD -> refs/heads/main)."""
    from steve.refs.listing import short_name

    repo = state.repo()
    if delete:
        repo.delete_symbolic_ref(name)
        return
    if target is not None:
        repo.set_symbolic_ref(name, target, message)
        return
    value = repo.read_symbolic_ref(name)
    if value is None:
        if not quiet:
            click.echo(f"steve: ref {name} is not a symbolic ref", err=True)
        sys.exit(EXIT_FALSE)
    write_line(short_name(value) if short else value)


@cli.command("show-ref")
@click.option("--heads", is_flag=True, help="Only refs/heads.")
@click.option("--tags", is_flag=True, help="Only refs/tags.")
@click.option("--hash", "hash_only", is_flag=True, help="Print only ids.")
@click.option("--head", "with_head", is_flag=True, help="Include HEAD.")
@click.option("--json", "as_json", is_flag=True, help='JSON Lines: {"ref", "id"}.')
@click.argument("patterns", nargs=-1)
@pass_state
def show_ref(
    state: Context,
    heads: bool,
    tags: bool,
    hash_only: bool,
    with_head: bool,
    as_json: bool,
    patterns: tuple[str, ...],
) -> None:
    """List refs as '<id> <ref>'; exit 1 when nothing matches."""
    from steve.refs.listing import show_ref as select

    repo = state.repo()
    head = repo.head() if with_head else None
    refs = select(repo.list_refs("refs/"), patterns, heads=heads, tags=tags, head=head)
    for name, oid in refs:
        if as_json:
            write_line(json.dumps({"ref": name, "id": oid.hex}, sort_keys=True))
        else:
            write_line(oid.hex if hash_only else f"{oid.hex} {name}")
    if not refs:
        sys.exit(EXIT_FALSE)


@cli.command("for-each-ref")
@click.option(
    "--format",
    "fmt",
    default=None,
    help="Placeholders: %(refname), %(refname:short), "
    "%(objectname), %(objectname:short), %(objecttype), %(symref), %%, %xx. "
    "Default: '%(objectname) %(objecttype)<TAB>%(refname)'.",
)
@click.option(
    "--count", type=click.IntRange(0, INT64_MAX), default=None, help="Stop after N refs (0: all)."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='JSON Lines: {"ref", "short", "id", "type", "symref"}.',
)
@click.argument("patterns", nargs=-1)
@pass_state
def for_each_ref(
    state: Context, fmt: str | None, count: int | None, as_json: bool, patterns: tuple[str, ...]
) -> None:
    """List refs with a custom format (PATTERNs: a prefix ending at a slash, or a glob)."""
    from steve.refs.listing import DEFAULT_FORMAT, RefFormat
    from steve.refs.listing import for_each_ref as select

    if as_json and fmt is not None:
        raise click.UsageError("--json and --format exclude each other")
    render = RefFormat(fmt if fmt is not None else DEFAULT_FORMAT)
    repo = state.repo()
    type_of = lambda oid: repo.object_type(oid).value  # noqa: E731
    for row in select(repo.list_refs("refs/"), type_of, patterns, count):
        if as_json:
            value = {
                "ref": row.name,
                "short": row.short,
                "id": row.target.hex,
                "type": row.type,
                "symref": row.symref,
            }
            write_line(json.dumps(value, sort_keys=True))
        else:
            write_line(render.format(row))


class _OptionalShortCommand(click.Command):
    """git's ``--short[=N]``: a bare ``--short`` never takes the next argument as N."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = ["--short=12" if a == "--short" else a for a in args]
        return super().parse_args(ctx, args)


@cli.command("rev-parse", cls=_OptionalShortCommand)
@click.option("--verify", is_flag=True, help="Exactly one REV, which must resolve.")
@click.option(
    "--short",
    "short",
    type=click.IntRange(0, 64, clamp=True),
    default=None,
    metavar="[=N]",
    help="Abbreviate ids to N hex digits (bare --short: 12).",
)
@click.option("--symbolic-full-name", is_flag=True, help="Print the full ref name instead.")
@click.option("-q", "--quiet", is_flag=True, help="With --verify: no message, just exit 1.")
@click.argument("revs", nargs=-1, required=True)
@pass_state
def rev_parse(
    state: Context,
    verify: bool,
    short: int | None,
    symbolic_full_name: bool,
    quiet: bool,
    revs: tuple[str, ...],
) -> None:
    """Resolve revisions to object ids (see docs/cli.md#revisions)."""
    if verify and len(revs) != 1:
        raise click.UsageError("--verify takes exactly one revision")
    repo = state.repo()
    for rev in revs:
        try:
            resolved = repo.resolve(rev)
        except (UnknownRevision, AmbiguousPrefix, ObjectNotFound):
            if verify and quiet:
                sys.exit(EXIT_FALSE)
            raise
        if symbolic_full_name:
            if resolved.ref:
                write_line(resolved.ref)
            continue
        write_line(resolved.oid.short(max(4, short)) if short else resolved.oid.hex)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="JSON lines with every field.")
@click.argument("ref", default="HEAD")
@pass_state
def reflog(state: Context, as_json: bool, ref: str) -> None:
    """Show a ref's log: '<id> REF@{N}: <message>', newest first."""
    repo = state.repo()
    for i, entry in enumerate(repo.reflog(ref)):
        new = entry.new.hex if entry.new else ZERO_ID
        if as_json:
            write_line(
                json.dumps(
                    {
                        "ref": entry.ref,
                        "index": i,
                        "old": entry.old.hex if entry.old else None,
                        "new": entry.new.hex if entry.new else None,
                        "who": entry.who,
                        "time": entry.time,
                        "tz": _tz(entry.tz),
                        "message": entry.message,
                    },
                    sort_keys=True,
                )
            )
        else:
            write_line(f"{new[:12]} {ref}@{{{i}}}: {entry.message}")


@cli.command()
@click.option("-a", "annotate", is_flag=True, help="Make an annotated tag object.")
@click.option("-m", "message", default=None, help="Tag message (implies -a).")
@click.option("-f", "force", is_flag=True, help="Replace an existing tag.")
@click.option("-d", "delete", is_flag=True, help="Delete the tag.")
@click.option("-l", "list_", is_flag=True, help="List tags.")
@click.option(
    "-s", "sign", is_flag=True, help="Make a signed tag with the signing identity (needs -m)."
)
@click.option(
    "--identity",
    "identities",
    multiple=True,
    metavar="NAME",
    help="Also sign with the named identity (co-signing; repeatable; implies -s).",
)
@click.argument("name", required=False)
@click.argument("rev", required=False, default="HEAD")
@pass_state
def tag(
    state: Context,
    annotate: bool,
    message: str | None,
    force: bool,
    delete: bool,
    list_: bool,
    sign: bool,
    identities: tuple[str, ...],
    name: str | None,
    rev: str,
) -> None:
    """Create, list or delete tags (refs/tags/NAME); -s signs (see `steve verify-tag`)."""
    repo = state.repo()
    if list_ or name is None:
        for ref in repo.list_refs("refs/tags/"):
            write_line(ref.name[len("refs/tags/") :])
        return
    if delete:
        repo.delete_ref(f"refs/tags/{name}")
        return
    sign = sign or bool(identities)
    if (annotate or sign) and message is None:
        raise click.UsageError("-a and -s need -m MESSAGE (no editor is started)")
    target = repo.rev_parse(rev)
    now, tz = frozen_time()  # SOURCE_DATE_EPOCH makes annotated tags reproducible
    signers = []
    if sign:
        from steve.cli.identity import load_signing_keys

        signers = load_signing_keys(identities)
    oid = repo.create_tag(
        name, target, message=message, force=force, now=now, tz=tz, signers=signers
    )
    if message is not None:
        write_line(oid.hex)


# --- maintenance ---------------------------------------------------------------------


@cli.command()
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per problem, then a summary object."
)
@click.option(
    "--events",
    "with_events",
    is_flag=True,
    help="Also verify the event log's chain and reconcile runs and refs with their events.",
)
@pass_state
def fsck(state: Context, as_json: bool, with_events: bool) -> None:
    """Verify every object (re-hash, strict decode) and every reference.

    Problems are 'corrupt' (bad bytes), 'missing' (referenced but absent),
    'bad-type', 'database' (damaged pages), 'index', 'run'; with --events
    also 'events', 'state' (a run or ref its events disagree with) and
    'undelivered'.  Exit 9 on any problem.
    """
    from steve.cli.homely import say  # lazily: start-up time
    from steve.messages import msg
    from steve.objects.oid import ObjectId
    from steve.store.maint import FsckProblem

    repo = state.repo()
    objects = refs = 0
    events: int | None = None
    counts: dict[str, int] = {}
    log = key = None
    kept: list[Checkpoint] = []
    if with_events:
        from steve.cli.events import pinned_key
        from steve.cli.identity import trusted_key

        log = state.event_log()
        key, kept, _ = trusted_key(log, repo, pinned_key(state), explicit=False)
    items: Iterable[object] = repo.iter_fsck()  # the event log's modules only when asked
    if with_events:
        from steve.events.fsck import iter_fsck

        items = iter_fsck(repo, log, public_key=key, witnessed=kept)
    from steve.cli.progress import held, terminal_progress

    shown = terminal_progress(state)
    if shown is not None:
        shown.start("fsck", repo.count_estimate(), unit="objects")
    try:
        for item in items:
            if isinstance(item, FsckProblem):
                counts[item.kind.value] = counts.get(item.kind.value, 0) + 1
                if as_json:
                    record: dict[str, object] = {
                        "problem": item.kind.value,
                        "id": item.oid.hex if item.oid else None,
                        "detail": item.detail,
                    }
                    if item.seq is not None:
                        record["seq"] = item.seq
                    line = json.dumps(record)
                else:
                    line = str(item)
                with held(shown):
                    write_line(line)
            elif isinstance(item, ObjectId):
                objects += 1
                if shown is not None:
                    shown.advance(1)
            elif isinstance(item, str):
                refs += 1
                if shown is not None:
                    if refs == 1:
                        shown.start("fsck: refs", None, unit="refs")
                    shown.advance(1, item)
            else:
                events = cast("EventsVerified", item).events
    finally:
        if shown is not None:
            shown.close()
    summary: dict[str, object] = {"objects": objects, "refs": refs, "problems": counts}
    events_text = ""
    if events is not None:
        summary["events"] = events
        events_text = f", {events} events"
    if as_json:
        write_line(json.dumps(summary, sort_keys=True))
    else:
        facts = {"objects": objects, "refs": refs, "events": events_text}
        if counts:
            click.echo(msg("repo.fsck.fact", status="FAILED", **facts), err=True)
        else:
            say(state, "repo.fsck_ok", err=True, **facts)
    if counts:
        from steve.errors import FsckFailed

        corrupt = sum(counts.get(k, 0) for k in ("corrupt", "database", "events"))
        missing = counts.get("missing", 0)
        err = FsckFailed(corrupt, missing, sum(counts.values()) - corrupt - missing)
        from steve.cli.app import report

        report(err)
        sys.exit(EXIT_CORRUPT)


@cli.command()
@click.option(
    "--prune",
    default="2.weeks.ago",
    show_default=True,
    help="Prune unreachable objects older than this ('now', 'never', 14d, ...).",
)
@click.option("--dry-run", "-n", is_flag=True, help="Report what would be pruned.")
@pass_state
def gc(state: Context, prune: str, dry_run: bool) -> None:
    """Delete objects unreachable from refs and reflogs (after a grace period)."""
    repo = state.repo()
    if prune == "never":
        before: int | None = None
    elif prune == "now":
        before = int(time.time()) + 1
    else:
        before = int(time.time()) - parse_duration(prune)
    from steve.cli.progress import progress_display

    with progress_display(state) as shown:
        report = repo.gc(prune_before=before, dry_run=dry_run, progress=shown)
    verb = "would prune" if dry_run else "pruned"
    write_line(
        f"{report.objects} objects, {report.reachable} reachable, "
        f"{report.unreachable} unreachable; {verb} {report.pruned}, "
        f"kept {report.kept_recent} recent"
        + (f"; repaired {report.index_repaired} index rows" if report.index_repaired else "")
    )
