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
    """A stage the table allows that a hand-made move may not enter (DEPLOY)."""

    code = "STEVE-STATE-010"
    exit_code = EXIT_INVALID
    action = (
        "Deploy with `steve deploy --to PATH` (it moves the run to DEPLOY), "
        "or go back with `steve run goto BUILD`."
    )

    def __init__(self, run: str, current: str, wanted: str, why: str) -> None:
        super().__init__(
            f"{wanted} cannot be entered by hand",
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
        "Check the git repository with `git fsck` and its permissions and free space, then retry."
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
    action = "Pin the signing identity's public key (`steve events pin-key`) or pass --public-key."

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
        super().__init__("the signing key file is readable by others", f"{path} has mode {mode}")
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
        super().__init__("the plan cannot be built here", f"run {run_id} stays in {stage}: {shown}")
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


# --- backup, restore, rekey, vacuum (issue 16) ------------------------------------------


class RepositoryInUse(SteveError):
    code = "STEVE-BACKUP-001"
    exit_code = EXIT_BUSY
    action = (
        "Nothing changed. Close the other STEVE processes using this repository "
        "(a running build, `steve events --follow`, steved) and retry."
    )

    def __init__(self, path: str, waited: float) -> None:
        super().__init__(
            "the repository is open in another process",
            f"{path}: the exclusive repository lock was not obtained within {waited:g}s",
        )
        self.path = path


class BackupExists(SteveError):
    code = "STEVE-BACKUP-002"
    exit_code = EXIT_INVALID
    action = "Nothing was written. Choose a path that does not exist yet."

    def __init__(self, path: str) -> None:
        super().__init__("the backup path already exists", path)
        self.path = path


class NotABackup(SteveError):
    code = "STEVE-BACKUP-003"
    exit_code = EXIT_INVALID
    action = "Give the directory `steve backup PATH` wrote (it holds manifest.json and config)."

    def __init__(self, path: str, why: str) -> None:
        super().__init__("not a STEVE backup", f"{path}: {why}")
        self.path = path


class BackupMismatch(SteveError):
    code = "STEVE-BACKUP-004"
    exit_code = EXIT_CORRUPT
    action = (
        "Nothing was restored. The backup is damaged or was altered; restore an older "
        "backup, or run `steve fsck` on the original repository and back it up again."
    )

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        shown = "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
        super().__init__("the backup does not match its manifest", f"{path}: {shown}")
        self.path = path
        self.problems = list(problems)


class RestoreTargetNotEmpty(SteveError):
    code = "STEVE-BACKUP-005"
    exit_code = EXIT_REPO
    action = "Nothing was written. Restore into a new or empty directory."

    def __init__(self, path: str) -> None:
        super().__init__("the restore target is not empty", path)
        self.path = path


class BackupFailed(SteveError):
    code = "STEVE-BACKUP-006"
    exit_code = EXIT_CORRUPT
    action = (
        "Nothing was left half-written. Check free space and permissions at the target "
        "(the detail names the cause) and retry."
    )

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what} failed", why)
# --- policy gate, approvals, kill switch, host actions, deploy (issue 15) -------------


class GateDenied(SteveError):
    """The policy gate denied an action (a deny rule; no approval can change it)."""

    code = "STEVE-GATE-001"
    exit_code = EXIT_POLICY
    action = (
        "Read the rule named above (`steve approvals` lists requests; docs/policy.md lists "
        "the rules); a deny rule cannot be approved."
    )

    def __init__(self, action: str, reason: str, rule: str) -> None:
        super().__init__("the policy gate denied the action", f"{action}: {reason} (rule {rule})")
        self.action_name, self.reason, self.rule = action, reason, rule


class ApprovalRequired(SteveError):
    """A host action without a terminal and without a matching approval."""

    code = "STEVE-GATE-002"
    exit_code = EXIT_POLICY
    action = (
        "Approve the request with `steve approve ID --reason TEXT` (ID is printed above) "
        "and run the command again, or run it on a terminal to be asked."
    )

    def __init__(self, action: str, approval_id: str, created: bool) -> None:
        state = "recorded" if created else "already pending"
        super().__init__(
            "this host action needs an approval",
            f"{action}\nno terminal to ask on and no matching approval; "
            f"approval request {approval_id} {state}",
        )
        self.approval_id = approval_id


class ApprovalNotFound(SteveError):
    code = "STEVE-GATE-003"
    exit_code = EXIT_NOT_FOUND
    action = "List approval requests with `steve approvals`."

    def __init__(self, spec: str, why: str = "no approval request with that id") -> None:
        super().__init__("unknown approval request", f"{spec}: {why}")


class ApprovalDecided(SteveError):
    code = "STEVE-GATE-004"
    exit_code = EXIT_REJECTED
    action = "An answer is final; request the action again to get a new approval request."

    def __init__(self, approval_id: str, state: str) -> None:
        super().__init__("the approval request was already answered", f"{approval_id} is {state}")
        self.approval_id, self.state = approval_id, state


class ApprovalExpired(SteveError):
    code = "STEVE-GATE-005"
    exit_code = EXIT_REJECTED
    action = "Run the command again to record a fresh approval request, then approve that one."

    def __init__(self, approval_id: str, expires_at: int) -> None:
        super().__init__(
            "the approval request has expired", f"{approval_id} expired at {expires_at}"
        )


class GateConfigInvalid(SteveError):
    code = "STEVE-GATE-006"
    exit_code = EXIT_INVALID
    action = "Fix the [gate] section of .steve/config (docs/policy.md shows the format)."

    def __init__(self, where: str, why: str) -> None:
        super().__init__("the policy gate's rules cannot be read", f"{where}: {why}")


class KillSwitchEngaged(SteveError):
    code = "STEVE-GATE-007"
    exit_code = EXIT_POLICY
    action = (
        "The kill switch is on (`steve kill-switch status`); turn it off with "
        "`steve kill-switch off` and unset STEVE_KILL_SWITCH once it is safe."
    )

    def __init__(self, action: str, source: str) -> None:
        super().__init__(
            "the kill switch denies every host action and container",
            f"{action}: refused (kill switch on: {source})",
        )


class HostActionDeclined(SteveError):
    code = "STEVE-GATE-008"
    exit_code = EXIT_POLICY
    action = "Nothing was done; run the command again and answer yes to go ahead."

    def __init__(self, action: str, outcome: str, receipt: str | None) -> None:
        where = f"; recorded in receipt {receipt}" if receipt else ""
        super().__init__(f"the host action was {outcome}", f"{action}{where}")
        self.outcome, self.receipt = outcome, receipt


class ApprovalUsed(SteveError):
    code = "STEVE-GATE-009"
    exit_code = EXIT_REJECTED
    action = "An approval allows one action once; run the command again for a new request."

    def __init__(self, approval_id: str) -> None:
        super().__init__("the approval was already used", approval_id)


class NoCertificate(SteveError):
    code = "STEVE-DEPLOY-001"
    exit_code = EXIT_POLICY
    action = (
        "Run `steve test` until it passes, or deploy unverified artifacts explicitly with "
        "`--override-unverified --reason TEXT`."
    )

    def __init__(self, run: str) -> None:
        super().__init__("nothing verified to deploy", f"run {run} has no test certificate")


class CertificateFailed(SteveError):
    code = "STEVE-DEPLOY-002"
    exit_code = EXIT_POLICY
    action = NoCertificate.action

    def __init__(self, certificate: str, failures: int) -> None:
        super().__init__(
            "the test certificate did not pass",
            f"certificate {certificate} says fail ({failures} failures)",
        )


class CertificateStale(SteveError):
    code = "STEVE-DEPLOY-003"
    exit_code = EXIT_POLICY
    action = "Run `steve test` on the current build, then deploy."

    def __init__(self, certificate: str, why: str) -> None:
        super().__init__(
            "the test certificate covers another build", f"certificate {certificate}: {why}"
        )


class ArtifactTampered(SteveError):
    code = "STEVE-DEPLOY-004"
    exit_code = EXIT_CORRUPT
    action = "Nothing was written; run `steve fsck`, restore the object from a backup and rebuild."

    def __init__(self, path: str, oid: str, why: str) -> None:
        super().__init__(
            "an artifact's bytes no longer match its id", f"{path} ({oid[:12]}): {why}"
        )


class DeployTargetExists(SteveError):
    code = "STEVE-DEPLOY-005"
    exit_code = EXIT_INVALID
    action = "Deploy to a new folder, or remove the old one first (STEVE never overwrites it)."

    def __init__(self, path: str) -> None:
        super().__init__("the deploy target exists and is not empty", path)


class DeployWriteFailed(SteveError):
    code = "STEVE-DEPLOY-006"
    exit_code = EXIT_INVALID
    action = "Check that the target's parent folder exists and is writable, then retry."

    def __init__(self, path: str, why: str) -> None:
        super().__init__("the deploy could not be written", f"{path}: {why}")


class OverrideNeedsReason(SteveError):
    code = "STEVE-DEPLOY-007"
    exit_code = EXIT_INVALID
    action = "Give the reason with --reason TEXT; it is recorded in the deploy receipt."

    def __init__(self) -> None:
        super().__init__("an override needs a reason", "--override-unverified without --reason")


class NothingToDeploy(SteveError):
    code = "STEVE-DEPLOY-008"
    exit_code = EXIT_INVALID
    action = "Declare outputs on the plan's build nodes (`outputs: [...]`) and build again."

    def __init__(self, run: str) -> None:
        super().__init__("no artifacts to deploy", f"the build of run {run} declared no outputs")


class UnsafeArtifact(SteveError):
    code = "STEVE-DEPLOY-009"
    exit_code = EXIT_POLICY
    action = "Change the plan so its build outputs hold only regular files and folders."

    def __init__(self, path: str, why: str) -> None:
        super().__init__("an artifact cannot be deployed safely", f"{path}: {why}")


class DeployVerifyFailed(SteveError):
    code = "STEVE-DEPLOY-010"
    exit_code = EXIT_CORRUPT
    action = "Nothing was put in place; check the disk under the target's parent and retry."

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(
            "a written file does not hash to its artifact id",
            f"{path}: expected {expected[:12]}, read back {actual[:12]}",
        )
# --- signing (issue 16) -----------------------------------------------------------------


class TagNotSigned(SteveError):
    code = "STEVE-SIGN-010"
    exit_code = EXIT_CORRUPT
    action = "Make a signed tag with `steve tag -s NAME REV -m MESSAGE` (needs an identity)."

    def __init__(self, name: str) -> None:
        super().__init__("the tag is not signed", f"refs/tags/{name} is not a signed tag object")
        self.name = name


class SignatureInvalid(SteveError):
    code = "STEVE-SIGN-011"
    exit_code = EXIT_CORRUPT
    action = (
        "Do not trust the object: it was changed after signing or signed by a key you do "
        "not trust. Compare the keys with `steve key show --public` and docs/trust.md."
    )

    def __init__(self, what: str, why: str) -> None:
        super().__init__("a signature does not verify", f"{what}: {why}")
        self.what = what


class SupersessionInvalid(SteveError):
    code = "STEVE-SIGN-012"
    exit_code = EXIT_CORRUPT
    action = "Inspect the chain with `steve supersessions REV`; see docs/trust.md (supersession)."

    def __init__(self, oid: str, why: str) -> None:
        super().__init__("the supersession chain does not verify", f"{oid[:12]}: {why}")
        self.oid = oid


class NoTrustRoot(SteveError):
    code = "STEVE-SIGN-013"
    exit_code = EXIT_KEY
    action = (
        "Pin your identity's key (`steve events pin-key`) or name the keys to trust with "
        "--key PUB.pem (from `steve key show --public`)."
    )

    def __init__(self, detail: str) -> None:
        super().__init__("no key to verify with", detail)


class BadPublicKey(SteveError):
    code = "STEVE-SIGN-014"
    exit_code = EXIT_INVALID
    action = "Give an Ed25519 public key as PEM (`steve key show --public > PUB.pem`) or hex."

    def __init__(self, source: str, why: str) -> None:
        super().__init__("not an Ed25519 public key", f"{source}: {why}")
        self.source = source


class AttestationInvalid(SteveError):
    code = "STEVE-ATTEST-001"
    exit_code = EXIT_CORRUPT
    action = (
        "Do not trust the attestation: it was changed after signing or was signed by "
        "another key. Check the key you verify with (`steve key show --public`)."
    )

    def __init__(self, source: str, why: str) -> None:
        super().__init__("the attestation does not verify", f"{source}: {why}")
        self.source = source


class AttestationMalformed(SteveError):
    code = "STEVE-ATTEST-002"
    exit_code = EXIT_INVALID
    action = "Give a DSSE envelope (JSON) as `steve attest` writes it."

    def __init__(self, source: str, why: str) -> None:
        super().__init__("not a DSSE in-toto attestation", f"{source}: {why}")
        self.source = source


class NotAttestable(SteveError):
    code = "STEVE-ATTEST-003"
    exit_code = EXIT_INVALID
    action = "Name a build receipt or a test certificate (e.g. refs/runs/<run>/test_certificate)."

    def __init__(self, rev: str, kind: str) -> None:
        super().__init__("only build receipts and test certificates are attested",
                         f"{rev} is a {kind}")
        self.rev = rev


class SbomFailed(SteveError):
    code = "STEVE-SBOM-001"
    exit_code = EXIT_INVALID
    action = "Check that the artifacts named by the receipt are in the store (`steve fsck`)."

    def __init__(self, subject: str, why: str) -> None:
        super().__init__("the SBOM could not be made", f"{subject}: {why}")
        self.subject = subject


class ImageUnsigned(SteveError):
    code = "STEVE-IMAGE-001"
    exit_code = EXIT_POLICY
    action = (
        "Sign the image (`steve image sign IMAGE`, or build it with `steve image build` in "
        "the repository with your identity), or grant the node `unsigned_image` with a "
        "reason in the plan's grants."
    )

    def __init__(self, image: str, node: str) -> None:
        super().__init__("refused: the image is not signed",
                         f"node {node}: no signature record for {image}")
        self.image = image
        self.node = node


class ImageSignatureInvalid(SteveError):
    code = "STEVE-IMAGE-002"
    exit_code = EXIT_POLICY
    action = (
        "Do not run the image: rebuild it and sign it with a trusted key (`steve image "
        "sign IMAGE`), or grant the node `unsigned_image` with a reason."
    )

    def __init__(self, image: str, node: str, why: str) -> None:
        super().__init__("refused: the image's signature does not verify",
                         f"node {node}: {image}: {why}")
        self.image = image
        self.node = node
# --- llm (issue 14) ---------------------------------------------------------------


class LlmError(SteveError):
    """A model exchange failed; ``provider`` names the provider.  Raised as is when the
    server cannot be reached (connection refused, DNS); the subclasses say more."""

    code = "STEVE-LLM-001"
    exit_code = EXIT_UNAVAILABLE
    action = "Check that the model server is reachable (base URL, network) and retry."

    def __init__(self, provider: str, detail: str, message: str = "") -> None:
        super().__init__(message or f"the {provider} model server cannot be reached", detail)
        self.provider = provider


class LlmAuthFailed(LlmError):
    code = "STEVE-LLM-002"
    exit_code = EXIT_KEY
    action = "Check the API key (ANTHROPIC_API_KEY or OPENAI_API_KEY) and its permissions."

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(provider, detail, f"the {provider} model server refused the API key")


class LlmRateLimited(LlmError):
    code = "STEVE-LLM-003"
    action = "Wait a minute and retry, or lower the request rate; nothing was recorded."

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(provider, detail, f"the {provider} model server is rate limiting")


class LlmRequestRejected(LlmError):
    code = "STEVE-LLM-004"
    exit_code = EXIT_INVALID
    action = "Check the model name and the request's size and parameters."

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(provider, detail, f"the {provider} model server rejected the request")


class LlmServerError(LlmError):
    code = "STEVE-LLM-005"
    action = "The model server failed or is overloaded; retry later."

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(provider, detail, f"the {provider} model server failed")


class LlmStreamError(LlmError):
    code = "STEVE-LLM-006"
    action = "The answer broke off mid-stream; retry (nothing of it was recorded)."

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(provider, detail, f"the {provider} answer stream failed")


class ReplayMiss(SteveError):
    code = "STEVE-LLM-007"
    exit_code = EXIT_NOT_FOUND
    action = (
        "Run once with a live provider (--llm anthropic/openai) to record the answer; "
        "replay answers only requests recorded before."
    )

    def __init__(self, request_oid: str, model: str) -> None:
        super().__init__(
            "no recorded answer for this request",
            f"request {request_oid} to model {model} was never recorded in this repository",
        )
        self.request_oid = request_oid


class UnknownProvider(SteveError):
    code = "STEVE-LLM-008"
    exit_code = EXIT_INVALID
    action = "Choose one of: anthropic, openai, scripted, replay (--llm, STEVE_LLM or [llm])."

    def __init__(self, name: str, where: str) -> None:
        super().__init__("unknown model provider", f"{name!r} (from {where})")
        self.name = name


class NoApiKey(SteveError):
    code = "STEVE-LLM-009"
    exit_code = EXIT_KEY
    action = "Set the provider's key in the environment (ANTHROPIC_API_KEY or OPENAI_API_KEY)."

    def __init__(self, provider: str, variable: str) -> None:
        super().__init__(f"no API key for {provider}", f"{variable} is not set")


class ScriptExhausted(SteveError):
    code = "STEVE-LLM-010"
    exit_code = EXIT_INVALID
    action = "Add answers to the fixture, or match them by key (see docs/llm.md#scripted)."

    def __init__(self, fixture: str, detail: str) -> None:
        super().__init__(
            "the scripted provider has no answer for this request", f"{fixture}: {detail}"
        )


class BadFixture(SteveError):
    code = "STEVE-LLM-011"
    exit_code = EXIT_INVALID
    action = "Fix the fixture file (a YAML or JSON list of answers, see docs/llm.md#scripted)."

    def __init__(self, fixture: str, detail: str) -> None:
        super().__init__("the scripted provider's fixture is invalid", f"{fixture}: {detail}")


class LlmTimeout(LlmError):
    code = "STEVE-LLM-012"
    action = "The model server did not answer in time; retry, or raise the timeout."

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(provider, detail, f"the {provider} model server timed out")


class BadLlmConfig(SteveError):
    code = "STEVE-LLM-013"
    exit_code = EXIT_INVALID
    action = "Fix the [llm] section of .steve/config or the --llm / STEVE_LLM value."

    def __init__(self, detail: str) -> None:
        super().__init__("invalid model provider settings", detail)


class BadModelOutput(LlmError):
    code = "STEVE-LLM-014"
    exit_code = EXIT_INVALID
    action = "The server's answer does not follow its wire format; check the base URL."

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(provider, detail, f"the {provider} answer could not be read")


class BudgetExceeded(SteveError):
    code = "STEVE-BUDGET-001"
    exit_code = EXIT_POLICY
    action = "Raise the budget with `steve budget set SCOPE TOKENS`, or shorten the request."

    def __init__(self, scope: str, limit: int, used: int, needed: int) -> None:
        super().__init__(
            "the token budget would be exceeded; nothing was sent",
            f"{scope}: limit {limit}, used {used}, this request may need up to {needed}",
        )
        self.scope = scope
        self.limit = limit
        self.used = used
        self.needed = needed


class BadBudgetScope(SteveError):
    code = "STEVE-BUDGET-002"
    exit_code = EXIT_INVALID
    action = "Use project, run, run:RUN_ID, stage, stage:STAGE or node (see docs/llm.md#budgets)."

    def __init__(self, scope: str) -> None:
        super().__init__("invalid budget scope", repr(scope))
        self.scope = scope


# --- secrets (issue 16) ---------------------------------------------------------


class WeakSecretValue(SteveError):
    code = "STEVE-REDACT-001"
    exit_code = EXIT_INVALID
    action = "Use a longer value (at least 8 bytes) that does not look like `[REDACTED:...]`."

    def __init__(self, name: str, why: str) -> None:
        super().__init__("a secret value cannot be redacted reliably", f"{name}: {why}")
        self.name = name


class SecretNotFound(SteveError):
    code = "STEVE-SECRET-001"
    exit_code = EXIT_NOT_FOUND
    action = "List the vault with `steve secret list`; add it with `steve secret set NAME`."

    def __init__(self, name: str) -> None:
        super().__init__("no such secret", f"{name!r} is not in the vault")
        self.name = name


class BadSecretName(SteveError):
    code = "STEVE-SECRET-002"
    exit_code = EXIT_INVALID
    action = "Name secrets like environment variables: [A-Za-z_][A-Za-z0-9_]*, at most 64."

    def __init__(self, name: str) -> None:
        super().__init__("invalid secret name", f"{name[:80]!r}")
        self.name = name


class BadSecretCommand(SteveError):
    code = "STEVE-SECRET-003"
    exit_code = EXIT_INVALID
    action = "Give the command as one string of shell-like words, e.g. --command 'pass show x'."

    def __init__(self, name: str, why: str) -> None:
        super().__init__("invalid external secret command", f"{name}: {why}")
        self.name = name


class SecretCommandFailed(SteveError):
    code = "STEVE-SECRET-004"
    exit_code = EXIT_UNAVAILABLE
    action = "Run the secret's command yourself to see why it fails (its output is not shown)."

    def __init__(self, name: str, why: str) -> None:
        super().__init__("the external secret command failed", f"{name}: {why}")
        self.name = name


class SecretNotGranted(SteveError):
    code = "STEVE-SECRET-005"
    exit_code = EXIT_POLICY
    action = "Add a grant {node: NODE, capability: secrets, reason: ...} to the plan's grants."

    def __init__(self, node: str, names: Sequence[str]) -> None:
        super().__init__(
            "refused by policy: a node uses secrets without a grant",
            f"node {node!r} declares secrets {', '.join(names)} but the plan grants it none",
        )
        self.node = node


class NoSecretValue(SteveError):
    code = "STEVE-SECRET-006"
    exit_code = EXIT_INVALID
    action = "Give the value on standard input (`steve secret set NAME < FILE`) or use a terminal."

    def __init__(self, name: str, why: str) -> None:
        super().__init__("no secret value given", f"{name}: {why}")
        self.name = name


class SecretInDraft(SteveError):
    code = "STEVE-SECRET-007"
    exit_code = EXIT_INVALID
    action = "Remove the value from the draft; give it to a step with `secrets:` instead."

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(
            "refused to freeze a draft that holds a secret's value",
            f"the {kind} draft contains the value of vault secret {name}",
        )
        self.name = name


# --- stages (issue 14) ----------------------------------------------------------------


class PatchMalformed(SteveError):
    code = "STEVE-PATCH-001"
    exit_code = EXIT_INVALID
    action = (
        "Give a unified diff (`diff -u` or `git diff` format) whose hunk headers count "
        "their lines; the line named above is where reading stopped."
    )

    def __init__(self, line: int, why: str) -> None:
        super().__init__("the patch is not a well-formed unified diff", f"line {line}: {why}")
        self.line = line
        self.why = why


class PatchDoesNotApply(SteveError):
    code = "STEVE-PATCH-002"
    exit_code = EXIT_INVALID
    action = (
        "The patch was written against other content: make it against the input tree "
        "(`steve ls-tree -r` and `steve cat-file -p` show it); nothing was changed."
    )

    def __init__(self, path: str, hunk: int, line: int, why: str) -> None:
        super().__init__(
            "the patch does not apply", f"{path}: hunk {hunk} (old line {line}): {why}"
        )
        self.path = path
        self.hunk = hunk
        self.line = line
        self.why = why


class PatchBinary(SteveError):
    code = "STEVE-PATCH-003"
    exit_code = EXIT_INVALID
    action = "Binary changes are refused: change text files only, or add binaries as inputs."

    def __init__(self, path: str) -> None:
        super().__init__("binary patches are refused", path)
        self.path = path


class PatchPathUnsafe(SteveError):
    code = "STEVE-PATCH-004"
    exit_code = EXIT_INVALID
    action = "Name files by relative paths inside the tree (no `..`, no absolute paths, no .steve)."

    def __init__(self, path: str, why: str) -> None:
        super().__init__("the patch names a path outside the tree", f"{path!r}: {why}")
        self.path = path
        self.why = why


class PatchConflict(SteveError):
    code = "STEVE-PATCH-005"
    exit_code = EXIT_INVALID
    action = (
        "The patch does not fit the tree's files (a file added that exists, changed that "
        "does not, or a mode that differs); make it against the input tree."
    )

    def __init__(self, path: str, why: str) -> None:
        super().__init__("the patch conflicts with the tree", f"{path}: {why}")
        self.path = path
        self.why = why


class PatchEmpty(SteveError):
    code = "STEVE-PATCH-006"
    exit_code = EXIT_INVALID
    action = "Give a diff that changes at least one file."

    def __init__(self, detail: str = "no file header (`--- a/PATH` / `diff --git`) found") -> None:
        super().__init__("the patch changes nothing", detail)


class ModelOutputInvalid(SteveError):
    code = "STEVE-LLM-030"
    exit_code = EXIT_INVALID
    action = (
        "Nothing was frozen. Rephrase the request (more detail helps), use a stronger model "
        "(--llm), or write the draft by hand and run `steve design FILE` / `steve plan FILE`."
    )

    def __init__(
        self, kind: str, rounds: int, problems: Sequence[tuple[str, str]], responses: Sequence[str]
    ) -> None:
        shown = "; ".join(f"{p or '(root)'}: {r}" for p, r in problems[:5])
        super().__init__(
            f"the model gave no valid {kind} draft",
            f"still invalid after {rounds} repair rounds: {shown} "
            f"(responses {', '.join(r[:12] for r in responses)})",
        )
        self.kind = kind
        self.problems = list(problems)
        self.responses = list(responses)


class ModelOutputNeedsApproval(SteveError):
    code = "STEVE-LLM-031"
    exit_code = EXIT_USAGE
    action = (
        "Run on a terminal to review and approve it, or pass --yes to approve without "
        "review (recorded as approved by --yes)."
    )

    def __init__(self, kind: str) -> None:
        super().__init__(
            f"the {kind} needs an approval; nothing was frozen",
            "no terminal to ask on and no --yes",
        )
        self.kind = kind


class ApprovalDeclined(SteveError):
    code = "STEVE-LLM-032"
    exit_code = EXIT_FALSE
    action = (
        "Nothing was frozen; the model's answer stays recorded. Run the command again with "
        "more detail, or edit the draft (`--edit` for plans)."
    )

    def __init__(self, kind: str) -> None:
        super().__init__(f"the {kind} was not approved; nothing was frozen", "answered no")
        self.kind = kind


class NothingToDecompose(SteveError):
    code = "STEVE-LLM-033"
    exit_code = EXIT_NOT_FOUND
    action = "Freeze a design first (`steve design --intake TEXT` or `steve design FILE`)."

    def __init__(self, run_id: str) -> None:
        super().__init__("the run has no design to decompose", f"run {run_id}")
        self.run_id = run_id


class EditorFailed(SteveError):
    code = "STEVE-LLM-034"
    exit_code = EXIT_INVALID
    action = "Check $VISUAL/$EDITOR (it must wait for the file to close), or run without --edit."

    def __init__(self, editor: str, detail: str) -> None:
        super().__init__("the editor failed; nothing was frozen", f"{editor}: {detail}")


class GenerateNeedsModel(SteveError):
    code = "STEVE-LLM-035"
    exit_code = EXIT_USAGE
    action = "Choose a model with --llm (or STEVE_LLM); `--llm replay` answers from the record."

    def __init__(self, run_id: str, nodes: Sequence[str]) -> None:
        super().__init__(
            "generate nodes need a model", f"run {run_id}: nodes {', '.join(nodes[:10])}"
        )
        self.nodes = list(nodes)

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


# --- the guided first run (steve start) -----------------------------------------------


class GuideNeedsTerminal(SteveError):
    code = "STEVE-UX-020"
    exit_code = EXIT_USAGE
    action = (
        "Run `steve start` on a terminal, type the commands above yourself, "
        "or use `steve start --yes` for the example's defaults."
    )

    def __init__(self, commands: list[str]) -> None:
        super().__init__(
            "the guided first run asks questions and needs a terminal",
            "standard input is not a terminal; the commands it would run:\n"
            + "\n".join(f"  {c}" for c in commands),
        )
        self.commands = commands


class GuideStepFailed(SteveError):
    code = "STEVE-UX-021"
    exit_code = EXIT_FAILED
    action = "Fix what the command said above, then run `steve start` again: it carries on here."

    def __init__(self, command: str, status: int) -> None:
        super().__init__("the guided run stopped: a command failed", f"`{command}` exited {status}")
        self.command = command
        self.status = status


class GuideNoBusybox(SteveError):
    code = "STEVE-UX-022"
    exit_code = EXIT_UNAVAILABLE
    action = (
        "Install Debian's busybox-static (`sudo apt-get install busybox-static`), "
        "then run `steve start` again."
    )

    def __init__(self, path: str) -> None:
        super().__init__(
            "the example needs a static busybox to build its container image offline",
            f"{path} does not exist",
        )


class GuideDesignInvalid(SteveError):
    code = "STEVE-UX-023"
    exit_code = EXIT_INVALID
    action = (
        "Edit design.yaml (`steve schema design` lists the fields), then run `steve start` again."
    )

    def __init__(self, problems: list[str]) -> None:
        super().__init__("design.yaml is not a valid design", "\n".join(problems))
        self.problems = problems


class GuideStepNotDone(SteveError):
    code = "STEVE-UX-024"
    exit_code = EXIT_FAILED
    action = "Run `steve status` to see where the run stands, then `steve start` again."

    def __init__(self, command: str, missing: str) -> None:
        super().__init__(
            "a command of the guided run succeeded but its result is not there",
            f"after `{command}`: {missing}",
        )
class NotATerminal(SteveError):
    code = "STEVE-TUI-001"
    exit_code = EXIT_USAGE
    action = "Run `steve tui` in an interactive terminal; scripts use `steve events --follow`."

    def __init__(self, stream: str) -> None:
        super().__init__("steve tui needs a terminal", f"{stream} is not a terminal")


# --- the human side: help, settings (issue 18) ------------------------------------------


class UnknownHelpTopic(SteveError):
    code = "STEVE-UX-001"
    exit_code = EXIT_NOT_FOUND
    action = "Name a command (`steve --help` lists them) or an error code such as STEVE-KEY-001."

    def __init__(self, topic: str) -> None:
        super().__init__(
            "no help on that topic", f"{topic!r} is neither a command nor an error code"
        )
        self.topic = topic


class UnknownSetting(SteveError):
    code = "STEVE-UX-002"
    exit_code = EXIT_INVALID
    action = "List the settings and their values with `steve config list`."

    def __init__(self, key: str, known: Sequence[str]) -> None:
        super().__init__("unknown setting", f"{key!r} (known: {', '.join(known)})")
        self.key = key
        self.known = list(known)


class BadSettingValue(SteveError):
    code = "STEVE-UX-003"
    exit_code = EXIT_INVALID
    action = "Give one of the values named above (`steve config list` shows the current ones)."

    def __init__(self, key: str, value: str, allowed: str) -> None:
        super().__init__("invalid value for a setting", f"{key} = {value!r}: {allowed}")
        self.key = key
        self.value = value

# --- RESEARCH: scope, fetch, mirror, search (issue 17) ---------------------------------------


class SourcePolicyRefused(SteveError):
    """A URL the scope's source policy does not allow (domain, scheme)."""

    code = "STEVE-RES-001"
    exit_code = EXIT_POLICY
    action = (
        "Fetch a URL the scope allows, or widen the policy (`steve research scope --allow "
        "DOMAIN`; docs/research.md)."
    )

    def __init__(self, url: str, reason: str) -> None:
        super().__init__("the source policy refuses this URL", f"{url}: {reason}")
        self.url, self.reason = url, reason


class RobotsDisallowed(SteveError):
    code = "STEVE-RES-002"
    exit_code = EXIT_POLICY
    action = (
        "The site asks robots not to fetch this path; leave it out, or record a scope "
        "with `--ignore-robots` if you have the site's permission."
    )

    def __init__(self, url: str, robots: str) -> None:
        super().__init__("robots.txt disallows this URL", f"{url} (rules from {robots})")
        self.url = url


class PageTooLarge(SteveError):
    code = "STEVE-RES-003"
    exit_code = EXIT_REJECTED
    action = "Raise the scope's page size cap (`steve research scope --max-page-bytes N`)."

    def __init__(self, url: str, cap: int) -> None:
        super().__init__("the page is larger than the size cap", f"{url}: over {cap} bytes")
        self.url, self.cap = url, cap


class FetchTimedOut(SteveError):
    code = "STEVE-RES-004"
    exit_code = EXIT_UNAVAILABLE
    action = "Try again later, or raise the scope's timeout (`steve research scope --timeout S`)."

    def __init__(self, url: str, seconds: float) -> None:
        super().__init__("the fetch took longer than the time cap", f"{url}: over {seconds:g}s")
        self.url = url


class TooManyRedirects(SteveError):
    code = "STEVE-RES-005"
    exit_code = EXIT_REJECTED
    action = "Fetch the final URL directly, or raise `--max-redirects` in the scope."

    def __init__(self, url: str, limit: int) -> None:
        super().__init__("too many redirects", f"{url}: more than {limit}")
        self.url = url


class MediaTypeRefused(SteveError):
    code = "STEVE-RES-006"
    exit_code = EXIT_POLICY
    action = "Allow the media type in the scope (`steve research scope --media-type TYPE`)."

    def __init__(self, url: str, media_type: str) -> None:
        super().__init__("the source policy refuses this media type", f"{url}: {media_type}")
        self.url, self.media_type = url, media_type


class FetchStatusError(SteveError):
    code = "STEVE-RES-007"
    exit_code = EXIT_FAILED
    action = "Check the URL; only successful (2xx) responses are mirrored."

    def __init__(self, url: str, status: int) -> None:
        super().__init__("the server answered with an error status", f"{url}: HTTP {status}")
        self.url, self.status = url, status


class FetchFailed(SteveError):
    code = "STEVE-RES-008"
    exit_code = EXIT_UNAVAILABLE
    action = "Check the address and the network (TLS certificates are always verified)."

    def __init__(self, url: str, detail: str) -> None:
        super().__init__("the fetch failed", f"{url}: {detail}")
        self.url = url


class NotMirrored(SteveError):
    code = "STEVE-RES-009"
    exit_code = EXIT_NOT_FOUND
    action = (
        "Offline fetches answer only from the mirror: fetch it once with `--online` (or "
        "`steve research import DIR`), then run offline."
    )

    def __init__(self, url: str) -> None:
        super().__init__("not in the mirror (offline)", url)
        self.url = url


class ResearchBudgetExceeded(SteveError):
    code = "STEVE-RES-010"
    exit_code = EXIT_POLICY
    action = "Fetch fewer sources, or raise the question's budget in `steve research scope`."

    def __init__(self, question: str, what: str, limit: int) -> None:
        super().__init__("the research budget is spent", f"{question}: {what} limit {limit}")


class ScopeInvalid(SteveError):
    code = "STEVE-RES-011"
    exit_code = EXIT_INVALID
    action = "Fix the option or the scope record named above (docs/research.md lists fields)."

    def __init__(self, detail: str) -> None:
        super().__init__("invalid research scope", detail)


class SearchUnavailable(SteveError):
    code = "STEVE-RES-012"
    exit_code = EXIT_UNAVAILABLE
    action = (
        "Set `searxng_url` under [research] in .steve/config or pass `--searxng URL`, "
        "or search the mirror with `--provider local`."
    )

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__("the search provider did not answer", f"{provider}: {detail}")


class ImportIndexInvalid(SteveError):
    code = "STEVE-RES-013"
    exit_code = EXIT_INVALID
    action = "Fix index.json (format in docs/research.md) and import again; nothing was stored."

    def __init__(self, path: str, detail: str) -> None:
        super().__init__("invalid mirror index", f"{path}: {detail}")


class UnknownQuestion(SteveError):
    code = "STEVE-RES-014"
    exit_code = EXIT_NOT_FOUND
    action = "Use a question id of the scope (`steve research scope --show` lists them)."

    def __init__(self, question: str, known: list[str]) -> None:
        super().__init__(
            "no such research question", f"{question} (known: {', '.join(known) or 'none'})"
        )
# --- RESEARCH: excerpts, cited summaries, freeze (issue 17) ---------------------------


class NoResearchQuestions(SteveError):
    code = "STEVE-RES-020"
    exit_code = EXIT_NOT_FOUND
    action = "Freeze a design with research_questions (RQ-nnn) in this run first."

    def __init__(self, run_id: str, detail: str) -> None:
        super().__init__("the run has no research questions to work on", f"run {run_id}: {detail}")
        self.run_id = run_id


class NothingToExcerpt(SteveError):
    code = "STEVE-RES-021"
    exit_code = EXIT_NOT_FOUND
    action = "Mirror pages first (`steve research fetch URL` or `steve research import DIR`)."

    def __init__(self, detail: str) -> None:
        super().__init__("no mirrored source has text to excerpt", detail)


class NoResearchDraft(SteveError):
    code = "STEVE-RES-022"
    exit_code = EXIT_NOT_FOUND
    action = "Propose excerpts first: `steve research extract`."

    def __init__(self, run_id: str) -> None:
        super().__init__("the run has no research draft yet", f"run {run_id}")
        self.run_id = run_id


class NoResearch(SteveError):
    code = "STEVE-RES-023"
    exit_code = EXIT_NOT_FOUND
    action = "Run `steve research extract`, then `summarize` and `freeze`."

    def __init__(self, run_id: str) -> None:
        super().__init__("the run has no research to show", f"run {run_id}")
        self.run_id = run_id


class SourceNotMirrored(SteveError):
    code = "STEVE-RES-024"
    exit_code = EXIT_NOT_FOUND
    action = "Mirror it first (`steve research fetch URL`), or leave --url out to use every page."

    def __init__(self, url: str) -> None:
        super().__init__("this URL is not in the mirror", url)
        self.url = url


class UnknownResearchQuestion(SteveError):
    code = "STEVE-RES-025"
    exit_code = EXIT_NOT_FOUND
    action = "Name a research question of the run's design (`steve cat` the design to list them)."

    def __init__(self, qid: str, known: list[str]) -> None:
        super().__init__(
            "no such research question", f"{qid} (the design has: {', '.join(known) or 'none'})"
        )
        self.qid = qid


class CitationsBroken(SteveError):
    code = "STEVE-CITE-001"
    exit_code = EXIT_INVALID
    action = "Run `steve research extract` and `summarize` again; nothing was frozen."

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"{path}: {rule}" for path, rule in problems[:20])
        more = f"\n(and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__("citations do not check out against the mirrored sources", lines + more)
        self.problems = problems


class SummaryRejected(SteveError):
    code = "STEVE-CITE-002"
    exit_code = EXIT_REJECTED
    action = (
        "Ask again (`steve research summarize --question RQ-nnn`), or with another model; "
        "the other questions' summaries were kept."
    )

    def __init__(self, qid: str, problems: list[tuple[str, str]], responses: list[str]) -> None:
        lines = "\n".join(f"{path}: {rule}" for path, rule in problems[:20])
        super().__init__(
            f"the summary of {qid} was rejected: its citations still fail after a repair round",
            f"{lines}\nresponses: {', '.join(r[:12] for r in responses)}",
        )
        self.qid = qid
        self.problems = problems
        self.responses = responses
