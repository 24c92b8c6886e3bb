"""STEVE's error hierarchy.

Every failure a user can meet is a :class:`SteveError` subclass with a stable
code (``STEVE-STOR-001``), a one-line human message, one factual detail line,
a suggested action and an exit code.  The CLI maps them to output in one
place (:mod:`steve.cli.main`); the library only raises them.

Exit codes (documented in docs/cli.md):

====  =====================================================
code  meaning
====  =====================================================
0     success
1     "no" answer of a query command (``cat-file -e``), like git
2     usage error (bad flags; click's own code)
3     not a repository / repository already exists
4     wrong key, missing passphrase, key cache problem
5     unknown revision or object, ambiguous prefix
6     invalid input (malformed object, bad ref name, bad value)
7     ref update rejected (compare-and-swap lost)
8     repository busy (write lock not obtained in time)
9     corrupt storage or fsck found problems
10    internal error (a bug)
11    a required engine or service is unavailable (container engine)
12    refused by policy (container policy, plan grants)
13    a build step or test failed, or a replay did not match
====  =====================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

EXIT_OK = 0
EXIT_FALSE = 1
EXIT_USAGE = 2
EXIT_REPO = 3
EXIT_KEY = 4
EXIT_NOT_FOUND = 5
EXIT_INVALID = 6
EXIT_REJECTED = 7
EXIT_BUSY = 8
EXIT_CORRUPT = 9
EXIT_INTERNAL = 10
EXIT_UNAVAILABLE = 11
EXIT_POLICY = 12
EXIT_FAILED = 13
EXIT_INTERRUPTED = 130


class SteveError(Exception):
    """Root of every error STEVE raises on purpose."""

    code: ClassVar[str] = "STEVE-INT-000"
    exit_code: ClassVar[int] = EXIT_INTERNAL
    action: ClassVar[str] = "This is a bug in STEVE; please report it with the command you ran."

    def __init__(self, message: str, detail: str = "", action: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if action is not None:
            self.action = action  # type: ignore[misc]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" + (f" ({self.detail})" if self.detail else "")


# --- repository -------------------------------------------------------------


class NotARepository(SteveError):
    code = "STEVE-REPO-001"
    exit_code = EXIT_REPO
    action = "Run `steve init` to create one, or pass --repo / set STEVE_DIR to an existing one."

    def __init__(self, path: str) -> None:
        super().__init__("not a STEVE repository", f"no usable .steve directory at or above {path}")
        self.path = path


class RepositoryExists(SteveError):
    code = "STEVE-REPO-002"
    exit_code = EXIT_REPO
    action = "Use the existing repository, or choose another directory."

    def __init__(self, path: str) -> None:
        super().__init__("a STEVE repository already exists here", f"{path} exists")
        self.path = path


class BadConfig(SteveError):
    code = "STEVE-REPO-003"
    exit_code = EXIT_REPO
    action = "Restore .steve/config from a backup; it holds the key-derivation salt."

    def __init__(self, path: str, why: str) -> None:
        super().__init__("the repository config cannot be read", f"{path}: {why}")


class RepositoryBusy(SteveError):
    code = "STEVE-REPO-004"
    exit_code = EXIT_BUSY
    action = "Another STEVE process is writing; wait for it to finish and retry."

    def __init__(self, path: str, waited: float) -> None:
        super().__init__(
            "the repository is busy", f"write lock on {path} not obtained within {waited:g}s"
        )


# --- keys ---------------------------------------------------------------------


class WrongKey(SteveError):
    code = "STEVE-KEY-001"
    exit_code = EXIT_KEY
    action = "Check the passphrase (STEVE_PASSPHRASE, STEVE_KEY_FILE or the prompt) and retry."

    def __init__(self, path: str) -> None:
        super().__init__("wrong passphrase or key", f"the key does not open {path}")


class NoPassphrase(SteveError):
    code = "STEVE-KEY-002"
    exit_code = EXIT_KEY
    action = (
        "Run on a terminal to be prompted, set STEVE_PASSPHRASE or STEVE_KEY_FILE, "
        "or run `steve unlock` first."
    )

    def __init__(self, detail: str = "no terminal to prompt on and no key configured") -> None:
        super().__init__("a passphrase is needed to open the repository", detail)


class KeyCacheError(SteveError):
    code = "STEVE-KEY-003"
    exit_code = EXIT_KEY
    action = "Unlock with the passphrase instead (STEVE_PASSPHRASE or the prompt)."

    def __init__(self, detail: str) -> None:
        super().__init__("the key cache is not usable", detail)


class BadPassphrase(SteveError):
    code = "STEVE-KEY-004"
    exit_code = EXIT_KEY
    action = "Give the passphrase as UTF-8 text (STEVE_PASSPHRASE, STEVE_KEY_FILE or the prompt)."

    def __init__(self, where: str) -> None:
        super().__init__("the passphrase is not valid UTF-8", f"from {where}")
        self.where = where


# --- storage --------------------------------------------------------------------


class CorruptDatabase(SteveError):
    code = "STEVE-STOR-001"
    exit_code = EXIT_CORRUPT
    action = "Run `steve fsck`; restore .steve/steve.db from a backup if it reports damage."

    def __init__(self, path: str, detail: str) -> None:
        action = None
        if path.endswith("events.db"):
            action = "Run `steve fsck --events`; restore .steve/events.db from a backup."
        super().__init__("the encrypted database is damaged", f"{path}: {detail}", action)
        self.path = path


class StorageError(SteveError):
    code = "STEVE-STOR-002"
    exit_code = EXIT_CORRUPT
    action = "Check free disk space and file permissions on .steve/, then retry."

    def __init__(self, detail: str) -> None:
        super().__init__("the object database could not complete the operation", detail)


class DiskFull(StorageError):
    code = "STEVE-STOR-004"
    exit_code = EXIT_CORRUPT
    action = "Free space on the file system holding .steve/, then retry; nothing was changed."

    def __init__(self, path: str, detail: str) -> None:
        SteveError.__init__(self, "the disk holding the repository is full", f"{path}: {detail}")
        self.path = path


class ReadOnlyStorage(StorageError):
    code = "STEVE-STOR-005"
    exit_code = EXIT_CORRUPT
    action = (
        "The repository is on read-only media or in a directory you cannot write: "
        "reading commands work there; copy it to writable storage to change it."
    )

    def __init__(self, path: str, detail: str) -> None:
        SteveError.__init__(self, "the repository cannot be written", f"{path}: {detail}")
        self.path = path


class StorageIOError(StorageError):
    code = "STEVE-STOR-006"
    exit_code = EXIT_CORRUPT
    action = (
        "The device reported an I/O error: check it (e.g. dmesg) and retry; "
        "run `steve fsck` once it reads reliably."
    )

    def __init__(self, path: str, detail: str) -> None:
        SteveError.__init__(self, "an I/O error interrupted the database", f"{path}: {detail}")
        self.path = path


class CannotOpenDatabase(StorageError):
    code = "STEVE-STOR-007"
    exit_code = EXIT_CORRUPT
    action = "Check that .steve/ and its files exist and that you may read and write them."

    def __init__(self, path: str, detail: str) -> None:
        SteveError.__init__(self, "the database file cannot be opened", f"{path}: {detail}")
        self.path = path


class UnsupportedFormat(SteveError):
    code = "STEVE-STOR-003"
    exit_code = EXIT_REPO
    action = "Upgrade STEVE to a version that knows this repository format."

    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            "the repository uses a newer storage format",
            f"format {found}, this STEVE supports up to {supported}",
        )


# --- objects --------------------------------------------------------------------


class ObjectNotFound(SteveError):
    code = "STEVE-OBJ-001"
    exit_code = EXIT_NOT_FOUND
    action = (
        "Check the id with `steve rev-parse`; list objects with "
        "`steve cat-file --batch-all-objects --batch-check`."
    )

    def __init__(self, oid: str) -> None:
        super().__init__("object not found", f"no object {oid} in the store")
        self.oid = oid


class MalformedObject(SteveError):
    code = "STEVE-OBJ-002"
    exit_code = EXIT_INVALID
    action = (
        "The bytes are not a canonical STEVE object; re-create them with "
        "`steve hash-object` or `steve freeze`."
    )

    def __init__(self, detail: str) -> None:
        super().__init__("malformed object", detail)


class CorruptObject(SteveError):
    code = "STEVE-OBJ-003"
    exit_code = EXIT_CORRUPT
    action = "Run `steve fsck` to list damage; restore the object from a backup or an export."

    def __init__(self, oid: str, detail: str) -> None:
        super().__init__("object is corrupt", f"{oid}: {detail}")
        self.oid = oid


class WrongObjectType(SteveError):
    code = "STEVE-OBJ-004"
    exit_code = EXIT_INVALID
    action = "Use a revision that names an object of the expected type (see `steve cat-file -t`)."

    def __init__(self, oid: str, expected: str, actual: str) -> None:
        super().__init__(f"object is a {actual}, not a {expected}", f"{oid} has type {actual}")
        self.oid, self.expected, self.actual = oid, expected, actual


class InvalidInput(SteveError):
    code = "STEVE-INPUT-001"
    exit_code = EXIT_INVALID
    action = "Fix the value named above and retry."

    def __init__(self, message: str, detail: str = "", action: str | None = None) -> None:
        super().__init__(message, detail, action)


# --- refs and revisions -----------------------------------------------------------


class BadRefName(SteveError):
    code = "STEVE-REF-001"
    exit_code = EXIT_INVALID
    action = "Ref names follow git's check-ref-format rules, e.g. refs/heads/main or refs/tags/v1."

    def __init__(self, name: str, why: str) -> None:
        super().__init__("invalid ref name", f"{name!r}: {why}")
        self.name = name


class RefNotFound(SteveError):
    code = "STEVE-REF-002"
    exit_code = EXIT_NOT_FOUND
    action = "List refs with `steve show-ref`."

    def __init__(self, name: str) -> None:
        super().__init__("ref not found", f"no ref named {name}")
        self.name = name


class RefUpdateRejected(SteveError):
    code = "STEVE-REF-003"
    exit_code = EXIT_REJECTED
    action = "Someone else moved the ref; re-read it with `steve rev-parse` and retry."

    def __init__(self, name: str, expected: str | None, actual: str | None) -> None:
        super().__init__(
            "ref update rejected",
            f"{name} is {actual or '(absent)'}, expected {expected or '(absent)'}",
        )
        self.name, self.expected, self.actual = name, expected, actual


class RefNameTooLong(SteveError):
    code = "STEVE-REF-004"
    exit_code = EXIT_INVALID
    action = (
        "Use a shorter name: git stores each ref as a file, so a component may have at "
        "most 250 bytes and the name 1024."
    )

    def __init__(self, name: str, why: str) -> None:
        super().__init__("ref name too long for git", f"{name[:80]!r}...: {why}")
        self.name = name


class RefNameConflict(SteveError):
    code = "STEVE-REF-005"
    exit_code = EXIT_INVALID
    action = (
        "A ref cannot be both a name and a directory of names (git stores refs as files); "
        "pick another name or delete the other ref first."
    )

    def __init__(self, name: str, other: str) -> None:
        super().__init__("ref name conflicts with an existing ref", f"{name} and {other}")
        self.name, self.other = name, other


class UnknownRevision(SteveError):
    code = "STEVE-REV-001"
    exit_code = EXIT_NOT_FOUND
    action = (
        "Use a full or unique abbreviated id, a ref name, or a suffix like REV^, REV~N, REF@{N}."
    )

    def __init__(self, rev: str, why: str = "unknown revision") -> None:
        super().__init__("unknown revision", f"{rev!r}: {why}")
        self.rev = rev


class AmbiguousPrefix(SteveError):
    code = "STEVE-REV-002"
    exit_code = EXIT_NOT_FOUND
    action = "Use more hex digits of the id."

    def __init__(self, prefix: str, candidates: Sequence[str]) -> None:
        shown = ", ".join(candidates[:10]) + (" ..." if len(candidates) > 10 else "")
        super().__init__("ambiguous id prefix", f"{prefix} matches {shown}")
        self.prefix = prefix
        self.candidates = list(candidates)


class BadRevision(SteveError):
    code = "STEVE-REV-003"
    exit_code = EXIT_INVALID
    action = "See docs/cli.md#revisions for the revision syntax."

    def __init__(self, rev: str, why: str) -> None:
        super().__init__("malformed revision", f"{rev!r}: {why}")
        self.rev = rev


# --- manifests and runs ---------------------------------------------------------------


class ManifestInvalid(SteveError):
    """A manifest draft failed validation; ``problems`` lists (field path, rule).

    The detail holds one problem per line."""

    code = "STEVE-MANIFEST-001"
    exit_code = EXIT_INVALID
    action = "Fix the fields named above (see `steve schema KIND`) and freeze again."

    def __init__(self, kind: str, problems: Sequence[tuple[str, str]]) -> None:
        shown = "\n".join(f"{path or '(root)'}: {rule}" for path, rule in problems[:20])
        more = f"\n... {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"invalid {kind} manifest", shown + more)
        self.kind = kind
        self.problems = list(problems)


class InvalidTransition(SteveError):
    code = "STEVE-STATE-001"
    exit_code = EXIT_INVALID
    action = "See `steve run show` for the stages reachable from the current one."

    def __init__(self, run: str, current: str, wanted: str, allowed: Sequence[str]) -> None:
        super().__init__(
            "stage transition not allowed",
            f"run {run} is in {current}; {current} -> {wanted} is not allowed "
            f"(allowed: {', '.join(allowed) or 'none'})",
            _way_out(current.upper(), wanted.upper()),
        )
        self.run, self.current, self.wanted = run, current, wanted
        self.allowed = list(allowed)


def _way_out(current: str, wanted: str) -> str | None:
    """The command that gets a user out of a refused transition, when there is one."""
    if current in ("BUILD", "TEST") and wanted in ("DESIGN", "RESEARCH", "PLAN"):
        return (
            "To change the plan, run `steve plan FILE`: in BUILD or TEST it records an "
            "amendment of the plan (the run stays where it is); then `steve build`."
        )
    if current in ("DESIGN", "RESEARCH", "PLAN") and wanted == "TEST":
        return "Build first with `steve build` (from PLAN it moves to BUILD), then `steve test`."
    return None


class RunNotFound(SteveError):
    code = "STEVE-STATE-002"
    exit_code = EXIT_NOT_FOUND
    action = "List runs with `steve run list`, or start one with `steve run new`."

    def __init__(self, run: str, why: str = "no such run") -> None:
        super().__init__("run not found", f"{run!r}: {why}")
        self.run = run


class StageChanged(SteveError):
    code = "STEVE-STATE-003"
    exit_code = EXIT_REJECTED
    action = "Another process moved the run; check `steve run show` and retry."

    def __init__(self, run: str, expected: str, actual: str) -> None:
        super().__init__(
            "run stage changed concurrently", f"{run} is {actual}, expected {expected}"
        )
        self.run, self.expected, self.actual = run, expected, actual


class StageNotAvailable(SteveError):
    """A stage the table allows but that no command can work in yet (DEPLOY)."""

    code = "STEVE-STATE-010"
    exit_code = EXIT_INVALID
    action = (
        "Stay in TEST (or go back with `steve run goto BUILD`); "
        "DEPLOY opens when `steve deploy` exists."
    )

    def __init__(self, run: str, current: str, wanted: str, why: str) -> None:
        super().__init__(
            f"{wanted} cannot be entered by hand yet",
            f"run {run} is in {current}; {current} -> {wanted} refused: {why}",
        )
        self.run, self.current, self.wanted = run, current, wanted


# --- git bridge (STEVE-GIT-*; steve/gitbridge) -------------------------------------


class NotAGitRepository(SteveError):
    code = "STEVE-GIT-001"
    exit_code = EXIT_REPO
    action = (
        "Name a git repository (bare or with a working tree); export-git creates one "
        "only at a missing path or an empty directory."
    )

    def __init__(self, path: str, why: str) -> None:
        super().__init__("not a git repository", f"{path}: {why}")
        self.path = path


class NonFastForward(SteveError):
    code = "STEVE-GIT-002"
    exit_code = EXIT_REJECTED
    action = (
        "The target's ref holds commits the export does not contain; export to another "
        "path, or pass --force to move the ref (its old value is printed)."
    )

    def __init__(self, ref: str, old: str, new: str) -> None:
        super().__init__(
            "refusing a non-fast-forward ref update", f"{ref} is {old}; the export has {new}"
        )
        self.ref, self.old, self.new = ref, old, new


class GitFailure(SteveError):
    code = "STEVE-GIT-003"
    exit_code = EXIT_CORRUPT
    action = (
        "Check the git repository with `git fsck` and its permissions and free space, "
        "then retry."
    )

    def __init__(self, operation: str, why: str) -> None:
        super().__init__("the git repository could not be read or written", f"{operation}: {why}")
        self.operation = operation


class GitVerifyFailed(SteveError):
    code = "STEVE-GIT-004"
    exit_code = EXIT_CORRUPT
    action = (
        "The listed commits do not match their Steve-Object ids; re-export them from the "
        "STEVE repository, or treat the mirror as tampered with."
    )

    def __init__(self, path: str, checked: int, problems: int) -> None:
        super().__init__(
            "the exported repository does not verify",
            f"{path}: {problems} problem(s) in {checked} commit(s) and tag(s)",
        )
        self.checked, self.problems = checked, problems


class NotRepresentable(SteveError):
    code = "STEVE-GIT-005"
    exit_code = EXIT_INVALID
    action = (
        "See docs/git-compat.md#export-git for what crosses between STEVE and git; "
        "rename or leave out the object named above."
    )

    def __init__(self, what: str, why: str) -> None:
        super().__init__("cannot be represented across the git bridge", f"{what}: {why}")
        self.what = what


class GitRevisionNotFound(SteveError):
    code = "STEVE-GIT-006"
    exit_code = EXIT_NOT_FOUND
    action = "List the git repository's refs with `git show-ref`; use a ref name or a full id."

    def __init__(self, rev: str, path: str) -> None:
        super().__init__("unknown git revision", f"{rev!r} in {path}")
        self.rev = rev



class NothingToExport(SteveError):
    code = "STEVE-GIT-007"
    exit_code = EXIT_NOT_FOUND
    action = (
        "Start a run (`steve run new`) or create a branch, or name the refs to export "
        "(or pass --all)."
    )

    def __init__(self, why: str) -> None:
        super().__init__("nothing to export", why)


class GitObjectTooLarge(NotRepresentable):
    code = "STEVE-GIT-008"
    exit_code = EXIT_INVALID
    action = (
        "STEVE reads git trees, commits, tags and delta-compressed objects whole, up to "
        "16 MiB (blobs stream at any size); repack large files without deltas "
        "(`git -c core.bigFileThreshold=16m repack -adf`) or treat the repository as hostile."
    )

    def __init__(self, what: str, amount: int, limit: int, unit: str = "bytes") -> None:
        super().__init__(what, f"{amount} {unit}, more than the {limit} STEVE reads")
        self.message = "a git object is too large to read in bounded memory"
        self.amount, self.limit = amount, limit

# --- trees from directories (STEVE-TREE-*; Repo.write_tree) ----------------------------


class FileNameNotUtf8(SteveError):
    code = "STEVE-TREE-001"
    exit_code = EXIT_INVALID
    action = "Rename the file to a UTF-8 name, or exclude it with a .steveignore pattern."

    def __init__(self, path: bytes) -> None:
        super().__init__("a file name is not UTF-8", f"{path!r}")
        self.path = path


class TreeTooDeep(SteveError):
    code = "STEVE-TREE-002"
    exit_code = EXIT_INVALID
    action = "Snapshot a shallower directory, or exclude the deep part with a .steveignore pattern."

    def __init__(self, path: str, limit: int) -> None:
        super().__init__(
            "the directory is nested too deeply", f"{path}: deeper than {limit} levels"
        )
        self.path, self.limit = path, limit


class BadIgnoreFile(SteveError):
    code = "STEVE-TREE-003"
    exit_code = EXIT_INVALID
    action = "Fix the .steveignore file named above (UTF-8 text, gitignore patterns)."

    def __init__(self, path: str, why: str) -> None:
        super().__init__("cannot use an ignore file", f"{path}: {why}")
        self.path = path


# --- events (STEVE-EVT-*; steve/events) ----------------------------------------------


class InvalidEvent(SteveError):
    code = "STEVE-EVT-001"
    exit_code = EXIT_INVALID
    action = "Use a dotted lowercase event type and a JSON object payload (see docs/events.md)."

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message, detail)


class EventChainBroken(SteveError):
    code = "STEVE-EVT-002"
    exit_code = EXIT_CORRUPT
    action = (
        "The event log was altered or damaged from the seq named above; "
        "restore .steve/events.db from a backup and compare."
    )

    def __init__(self, seq: int, why: str) -> None:
        super().__init__("the event chain does not verify", f"first bad seq {seq}: {why}")
        self.seq, self.why = seq, why


class CheckpointInvalid(SteveError):
    code = "STEVE-EVT-003"
    exit_code = EXIT_CORRUPT
    action = (
        "A sealed segment or signed checkpoint does not match the log; "
        "restore .steve/events.db from a backup and compare."
    )

    def __init__(self, what: str, why: str) -> None:
        super().__init__("an event log checkpoint does not verify", f"{what}: {why}")
        self.what, self.why = what, why


class EventLogUnavailable(SteveError):
    code = "STEVE-EVT-004"
    exit_code = EXIT_CORRUPT
    action = "Check free disk space and permissions on .steve/events.db, then retry."

    def __init__(self, detail: str) -> None:
        super().__init__("the event log cannot accept events", detail)


class EventLogUnsigned(SteveError):
    code = "STEVE-EVT-020"
    exit_code = EXIT_CORRUPT
    action = (
        "Sign the log with the pinned identity (`steve events seal`); if you never left it "
        "unsigned this long, the log was cut or rewritten: restore .steve/events.db from a "
        "backup or compare with the checkpoints exported by export-git."
    )

    def __init__(self, seq: int, why: str) -> None:
        super().__init__("a seal of the event log is missing", f"seq {seq}: {why}")
        self.seq, self.why = seq, why


class NoPinnedKey(SteveError):
    code = "STEVE-EVT-021"
    exit_code = EXIT_USAGE
    action = (
        "Pin the signing identity's public key (`steve events pin-key`) or pass --public-key."
    )

    def __init__(self, detail: str) -> None:
        super().__init__("no public key is pinned for the event log", detail)


# --- signing identity (STEVE-SIGN-*; steve/events/signing.py) -------------------------


class NoSigningIdentity(SteveError):
    code = "STEVE-SIGN-001"
    exit_code = EXIT_KEY
    action = (
        "Create one with `steve identity init` (or set STEVE_IDENTITY_DIR to the directory "
        "that holds yours)."
    )

    def __init__(self, detail: str) -> None:
        super().__init__("no signing identity", detail)


class WrongSigningPassphrase(SteveError):
    code = "STEVE-SIGN-002"
    exit_code = EXIT_KEY
    action = "Check the signing passphrase (STEVE_SIGNING_PASSPHRASE or the prompt) and retry."

    def __init__(self, path: str) -> None:
        super().__init__("wrong signing passphrase", f"it does not decrypt {path}")
        self.path = path


class IdentityExists(SteveError):
    code = "STEVE-SIGN-003"
    exit_code = EXIT_REJECTED
    action = "Keep using it (`steve identity show`), or choose another STEVE_IDENTITY_DIR."

    def __init__(self, path: str) -> None:
        super().__init__("a signing identity already exists", f"{path} exists")
        self.path = path


class IdentityInsecure(SteveError):
    code = "STEVE-SIGN-004"
    exit_code = EXIT_KEY
    action = "Make the key file private (`chmod 600 FILE`) and retry."

    def __init__(self, path: str, mode: str) -> None:
        super().__init__(
            "the signing key file is readable by others", f"{path} has mode {mode}"
        )
        self.path = path


class IdentityDamaged(SteveError):
    code = "STEVE-SIGN-005"
    exit_code = EXIT_CORRUPT
    action = "Restore the signing key file from a backup, or create a new identity and pin it."

    def __init__(self, path: str, why: str) -> None:
        super().__init__("the signing key file cannot be read", f"{path}: {why}")
        self.path = path


class NoSigningPassphrase(SteveError):
    code = "STEVE-SIGN-006"
    exit_code = EXIT_KEY
    action = "Run on a terminal to be prompted, or set STEVE_SIGNING_PASSPHRASE."

    def __init__(self, detail: str = "no terminal to prompt on") -> None:
        super().__init__("a signing passphrase is needed", detail)


class VerifyFailed(SteveError):
    code = "STEVE-VERIFY-001"
    exit_code = EXIT_CORRUPT
    action = "Restore the listed objects from a backup or an export-git mirror."

    def __init__(self, rev: str, corrupt: int, missing: int, invalid: int) -> None:
        super().__init__(
            "the closure does not verify",
            f"{rev}: {corrupt} corrupt, {missing} missing, {invalid} invalid",
        )
        self.corrupt, self.missing, self.invalid = corrupt, missing, invalid


# --- containers and execution (STEVE-CONT-*, STEVE-POLICY-*; steve/exec) ------------------


class EngineUnavailable(SteveError):
    code = "STEVE-CONT-001"
    exit_code = EXIT_UNAVAILABLE
    action = (
        "Start the Docker Engine (e.g. `systemctl start docker`) or set DOCKER_HOST "
        "to a reachable engine, then retry."
    )

    def __init__(self, where: str, why: str) -> None:
        super().__init__("the container engine is unavailable", f"{where}: {why}")
        self.where = where


class ImageNotFound(SteveError):
    code = "STEVE-CONT-002"
    exit_code = EXIT_NOT_FOUND
    action = (
        "Create the image offline with `steve image import` or `steve image build`, "
        "and list local images with `steve image ls`."
    )

    def __init__(self, ref: str) -> None:
        super().__init__("image not found in the container engine", f"no local image {ref}")
        self.ref = ref


class ImageNotPinned(SteveError):
    code = "STEVE-CONT-003"
    exit_code = EXIT_POLICY
    action = (
        "Pin the image as sha256:<64 hex> (its id, see `steve image ls`) or "
        "name@sha256:<64 hex> (a name for people, the same id)."
    )

    def __init__(self, ref: str) -> None:
        super().__init__(
            "image is not pinned by digest",
            f"{ref[:200]!r} is not sha256:<64 hex> or name@sha256:<64 hex>",
        )
        self.ref = ref


class ImageBuildFailed(SteveError):
    code = "STEVE-CONT-004"
    exit_code = EXIT_FAILED
    action = "Fix the Dockerfile or tarball named above; images are built offline (no pulls)."

    def __init__(self, source: str, why: str) -> None:
        super().__init__("the image could not be built or imported", f"{source}: {why}")
        self.source = source


class ContainerFailed(SteveError):
    code = "STEVE-CONT-005"
    exit_code = EXIT_FAILED
    action = (
        "Check the engine with `docker info`; remove leftovers with `steve janitor`, then retry."
    )

    def __init__(self, operation: str, why: str) -> None:
        super().__init__("the container engine could not run the step", f"{operation}: {why}")
        self.operation = operation


class UnsafeArchive(SteveError):
    code = "STEVE-CONT-006"
    exit_code = EXIT_POLICY
    action = (
        "Make the step write only regular files, directories and relative symlinks "
        "under its declared outputs."
    )

    def __init__(self, member: str, why: str) -> None:
        super().__init__("an archive entry was refused", f"{member!r}: {why}")
        self.member = member


class PolicyViolation(SteveError):
    """A container policy asks for more than the defaults without a grant."""

    code = "STEVE-POLICY-001"
    exit_code = EXIT_POLICY
    action = (
        "Remove the request, or add a grant for the node and capability (with a reason) "
        "to the plan's grants, and record the plan again with `steve plan FILE` (in BUILD "
        "or TEST it amends the plan)."
    )

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__("refused by the container policy", f"{rule}: {detail}")
        self.rule = rule

class StepsInterrupted(SteveError):
    """SIGINT or SIGTERM stopped a build, test or replay; what ran is recorded as such."""

    code = "STEVE-CONT-007"
    exit_code = EXIT_INTERRUPTED
    action = (
        "Run the command again: finished nodes come from the cache, the interrupted "
        "ones run again (`steve janitor` lists anything an engine error left behind)."
    )

    def __init__(self, why: str, interrupted: Sequence[str]) -> None:
        shown = ", ".join(interrupted[:10]) + (" ..." if len(interrupted) > 10 else "")
        super().__init__(
            "interrupted: the running steps were stopped and their containers removed",
            f"{why}; interrupted: {shown or 'none'}",
        )
        self.interrupted = list(interrupted)


class EngineSocketMount(SteveError):
    """A host mount of the container engine's socket: refused whatever the grants."""

    code = "STEVE-POLICY-002"
    exit_code = EXIT_POLICY
    action = (
        "Remove the host mount: a step with the engine's socket controls the host, so no "
        "grant allows it (give the step what it needs as inputs instead)."
    )

    def __init__(self, detail: str) -> None:
        super().__init__("refused: a step may not mount the container engine's socket", detail)


# --- build, test and replay (STEVE-BUILD-*; steve/porcelain) ------------------------------


class NoPlan(SteveError):
    code = "STEVE-BUILD-001"
    exit_code = EXIT_NOT_FOUND
    action = "Freeze a plan into the run with `steve plan FILE`, then build."

    def __init__(self, run_id: str) -> None:
        super().__init__("the run has no frozen plan", f"run {run_id}: no refs/runs/{run_id}/plan")
        self.run_id = run_id


class PlanNotBuilt(SteveError):
    code = "STEVE-BUILD-002"
    exit_code = EXIT_INVALID
    action = "Run `steve build` for the run until it succeeds, then `steve test`."

    def __init__(self, run_id: str, node: str) -> None:
        super().__init__(
            "the plan is not built", f"run {run_id}: node {node!r} has no successful receipt"
        )
        self.run_id = run_id
        self.node = node


class NoTestNodes(SteveError):
    code = "STEVE-BUILD-003"
    exit_code = EXIT_INVALID
    action = (
        "Add nodes of kind `test` to the plan and record it with `steve plan FILE` (in BUILD "
        "it amends the plan); a certificate needs at least one test."
    )

    def __init__(self, plan: str) -> None:
        super().__init__("the plan has no test nodes", f"plan {plan}")
        self.plan = plan


class BuildFailed(SteveError):
    code = "STEVE-BUILD-004"
    exit_code = EXIT_FAILED
    action = (
        "Read the failed steps' output with `steve logs`, change the plan with "
        "`steve plan FILE` (recorded as an amendment) or fix its inputs, then `steve build` "
        "again (unchanged nodes come from the cache)."
    )

    def __init__(self, run_id: str, failed: Sequence[str]) -> None:
        shown = ", ".join(failed[:10]) + (" ..." if len(failed) > 10 else "")
        super().__init__("the build failed", f"run {run_id}: failed {shown}")
        self.run_id = run_id
        self.failed = list(failed)


class TestsFailed(SteveError):
    __test__ = False  # not a pytest class

    code = "STEVE-BUILD-005"
    exit_code = EXIT_FAILED
    action = (
        "Read the failures above and the output with `steve logs`; the run is back in "
        "BUILD: change the plan with `steve plan FILE` (recorded as an amendment) or fix its "
        "inputs, then run `steve build` and `steve test`."
    )

    def __init__(self, run_id: str, certificate: str, failed: Sequence[str]) -> None:
        shown = ", ".join(failed[:10]) + (" ..." if len(failed) > 10 else "")
        super().__init__(
            "tests failed", f"run {run_id}: certificate {certificate[:12]}: failed {shown}"
        )
        self.run_id = run_id
        self.certificate = certificate


class BuildNotReady(SteveError):
    code = "STEVE-BUILD-007"
    exit_code = EXIT_NOT_FOUND
    action = (
        "Nothing moved. Create the missing images offline (`steve image import` or "
        "`steve image build`, see `steve image ls`), or change the plan with `steve plan FILE` "
        "(in BUILD or TEST it records an amendment), then run the command again."
    )

    def __init__(self, run_id: str, stage: str, problems: Sequence[str]) -> None:
        shown = "; ".join(problems[:10]) + (" ..." if len(problems) > 10 else "")
        super().__init__(
            "the plan cannot be built here", f"run {run_id} stays in {stage}: {shown}"
        )
        self.run_id = run_id
        self.problems = list(problems)


class ReplayMismatch(SteveError):
    code = "STEVE-BUILD-006"
    exit_code = EXIT_FAILED
    action = (
        "Compare the outputs with `steve ls-tree`; declare expected non-determinism in the "
        "plan node's `nondeterminism`, or make the step reproducible."
    )

    def __init__(self, receipts: Sequence[str], paths: Sequence[str]) -> None:
        shown = ", ".join(paths[:10]) + (" ..." if len(paths) > 10 else "")
        which = ", ".join(r[:12] for r in receipts[:5])
        super().__init__("a replay did not match its receipt", f"{which}: differs at {shown}")
        self.receipts = list(receipts)
        self.paths = list(paths)

# --- fsck ---------------------------------------------------------------------------


class FsckFailed(SteveError):
    code = "STEVE-FSCK-001"
    exit_code = EXIT_CORRUPT
    action = "Restore the listed objects from a backup or an export-git mirror."

    def __init__(self, corrupt: int, missing: int, other: int) -> None:
        super().__init__(
            "fsck found problems",
            f"{corrupt} corrupt, {missing} missing, {other} other",
        )


class InternalError(SteveError):
    code = "STEVE-INT-001"
    exit_code = EXIT_INTERNAL


# --- daemon (issue 15) ------------------------------------------------------------------


class DaemonNotRunning(SteveError):
    code = "STEVE-DAEMON-001"
    exit_code = EXIT_UNAVAILABLE
    action = "Start it with `steve daemon start`, or run the command without the daemon."

    def __init__(self, detail: str) -> None:
        super().__init__("steved is not running", detail)


class DaemonAlreadyRunning(SteveError):
    code = "STEVE-DAEMON-002"
    exit_code = EXIT_BUSY
    action = "Use the running daemon (`steve daemon status`), or stop it with `steve daemon stop`."

    def __init__(self, detail: str) -> None:
        super().__init__("a steved already serves this repository", detail)


class BadFrame(SteveError):
    code = "STEVE-DAEMON-003"
    exit_code = EXIT_UNAVAILABLE
    action = "Use a steve client of the same version as steved; the connection was closed."

    def __init__(self, detail: str) -> None:
        super().__init__("malformed frame on the daemon socket", detail)


class FrameTooLarge(SteveError):
    code = "STEVE-DAEMON-004"
    exit_code = EXIT_UNAVAILABLE
    action = "Send smaller requests (stdin is streamed in chunks by the steve client)."

    def __init__(self, size: int, limit: int) -> None:
        super().__init__("frame too large", f"{size} bytes announced, the limit is {limit}")
        self.size = size
        self.limit = limit


class PeerRefused(SteveError):
    code = "STEVE-DAEMON-005"
    exit_code = EXIT_POLICY
    action = "Connect as the user that started steved; the socket serves its owner only."

    def __init__(self, uid: int, owner: int) -> None:
        super().__init__(
            "connection refused: foreign user", f"peer uid {uid}, steved runs as {owner}"
        )
        self.uid = uid


class DaemonBusy(SteveError):
    code = "STEVE-DAEMON-006"
    exit_code = EXIT_BUSY
    action = "Retry shortly; the daemon's request queue is full."

    def __init__(self, depth: int) -> None:
        super().__init__(
            "steved is busy", f"the writer queue holds its maximum of {depth} requests"
        )


class DaemonLocked(SteveError):
    code = "STEVE-DAEMON-007"
    exit_code = EXIT_KEY
    action = (
        "Run the command again with a passphrase (the client unlocks the daemon), or restart it."
    )

    def __init__(self, detail: str = "steve lock or the key's TTL dropped it") -> None:
        super().__init__("steved holds no key", detail)


class DaemonConnectionLost(SteveError):
    code = "STEVE-DAEMON-008"
    exit_code = EXIT_UNAVAILABLE
    action = (
        "Check `steve daemon status`; a write whose result was not printed may or may not "
        "have committed (look it up before repeating it)."
    )

    def __init__(self, detail: str) -> None:
        super().__init__("the connection to steved was lost", detail)


class NonLoopbackAddress(SteveError):
    code = "STEVE-DAEMON-009"
    exit_code = EXIT_INVALID
    action = "Give a loopback address such as 127.0.0.1:9464 or [::1]:9464."

    def __init__(self, address: str, why: str) -> None:
        super().__init__("the metrics listener must bind to loopback", f"{address}: {why}")
        self.address = address


class FollowerLagged(SteveError):
    code = "STEVE-DAEMON-010"
    exit_code = EXIT_FAILED
    action = (
        "Read the missed range with `steve events --from-seq FIRST` (the log keeps every event)."
    )

    def __init__(self, first: int, last: int) -> None:
        super().__init__(
            "the follower fell behind and skipped events",
            f"events {first}..{last} were not sent on this stream",
        )
        self.first = first
        self.last = last


class DaemonStartFailed(SteveError):
    code = "STEVE-DAEMON-011"
    exit_code = EXIT_UNAVAILABLE
    action = "Read .steve/steved.log (JSON Lines) for the cause, fix it and start again."

    def __init__(self, detail: str) -> None:
        super().__init__("steved did not start", detail)


class DaemonWrongRepository(SteveError):
    code = "STEVE-DAEMON-012"
    exit_code = EXIT_REPO
    action = "Each repository has its own steved; talk to the one in that repository's .steve."

    def __init__(self, served: str, asked: str) -> None:
        super().__init__("this steved serves another repository", f"serves {served}, asked {asked}")


class SlowClient(SteveError):
    code = "STEVE-DAEMON-013"
    exit_code = EXIT_UNAVAILABLE
    action = "Read the daemon's output promptly; a stuck reader is cut off to bound memory."

    def __init__(self, limit: int) -> None:
        super().__init__(
            "cut off: the client did not read its output", f"buffer limit {limit} bytes"
        )


class DaemonShuttingDown(SteveError):
    code = "STEVE-DAEMON-014"
    exit_code = EXIT_UNAVAILABLE
    action = "Start steved again (`steve daemon start`) and retry; nothing of this request ran."

    def __init__(self) -> None:
        super().__init__("steved is shutting down", "new requests are refused while it drains")


class DaemonStopTimeout(SteveError):
    code = "STEVE-DAEMON-015"
    exit_code = EXIT_BUSY
    action = (
        "Wait for its in-flight write to finish, or send SIGKILL (no acknowledged write is lost)."
    )

    def __init__(self, pid: int, waited: float) -> None:
        super().__init__("steved did not stop in time", f"pid {pid} still runs after {waited:g}s")
