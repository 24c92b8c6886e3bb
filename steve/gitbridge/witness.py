"""Signed event-log checkpoints in a git mirror (``refs/steve/checkpoints``), so the
mirror witnesses them: whoever later holds only the repository key cannot make the
mirror forget a checkpoint it already has.

The ref points to a commit whose tree is::

    public-key                       the pinned Ed25519 public key, hex
    checkpoints/<seq>-<time>.cbor    the exact bytes the key signed (canonical CBOR)
    checkpoints/<seq>-<time>.sig     the 64-byte Ed25519 signature
    checkpoints/<seq>-<time>.json    the same record, readable

Commits are deterministic (fixed identity, the newest checkpoint's time) and chain
to the ref's previous commit; an export with nothing new writes nothing.
:func:`verify_checkpoints` checks every record's signature against the public
key in the tree, without STEVE's key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from dulwich.file import FileLocked
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref as GitRefName

from steve.errors import GitFailure, MalformedObject
from steve.gitbridge.target import GIT_READ_ERRORS, GitRepo, open_git, read_refs
from steve.objects import cbor

CHECKPOINTS_REF = b"refs/steve/checkpoints"
IDENTITY = b"steve <steve@localhost>"
_FILE = 0o100644
_DIR = 0o040000


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """One checkpoint as the key signed it: the message bytes and the signature."""

    message: bytes
    signature: bytes

    def fields(self) -> dict[str, object]:
        """The decoded message (MalformedObject if it is not a checkpoint message)."""
        value = cbor.decode(self.message)
        if type(value) is not dict or value.get("v") not in (1, 2):
            raise MalformedObject("not a checkpoint message")
        for name, kind in (("log", str), ("seq", int), ("head", bytes), ("time", int)):
            if type(value.get(name)) is not kind:
                raise MalformedObject(f"checkpoint field {name!r} missing or mistyped")
        return value

    def stem(self) -> str:
        f = self.fields()
        return f"{f['seq']:016d}-{f['time']}"

    def to_json(self) -> bytes:
        f = self.fields()
        record = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in f.items()}
        record["signature"] = self.signature.hex()
        return (json.dumps(record, sort_keys=True, indent=1) + "\n").encode()


def _blob(git: GitRepo, data: bytes) -> bytes:
    blob = Blob.from_string(data)
    git.object_store.add_object(blob)
    return bytes(blob.id)


def export_checkpoints(
    git: GitRepo, public_key: bytes, checkpoints: Sequence[SignedCheckpoint]
) -> str | None:
    """Point ``refs/steve/checkpoints`` of ``git`` at a commit holding ``checkpoints``
    (and every record the ref already held); returns the new commit id (hex), or
    None when there was nothing new."""
    if not checkpoints:
        return None
    refs = read_refs(git)
    old = refs.get(GitRefName(CHECKPOINTS_REF))
    entries: dict[bytes, bytes] = {}
    old_tree: bytes | None = None
    if old is not None:
        commit = git[old]
        if isinstance(commit, Commit):
            old_tree = bytes(commit.tree)
            sub = _subtree(git, old_tree, b"checkpoints")
            if sub is not None:
                entries.update({name: bytes(sha) for name, _, sha in sub.iteritems()})
    try:
        for cp in checkpoints:
            stem = cp.stem().encode()
            entries[stem + b".cbor"] = _blob(git, cp.message)
            entries[stem + b".sig"] = _blob(git, cp.signature)
            entries[stem + b".json"] = _blob(git, cp.to_json())
        sub_tree = Tree()
        for name, sha in entries.items():
            sub_tree.add(name, _FILE, ObjectID(sha))
        git.object_store.add_object(sub_tree)
        root = Tree()
        root.add(b"public-key", _FILE, ObjectID(_blob(git, public_key.hex().encode() + b"\n")))
        root.add(b"checkpoints", _DIR, sub_tree.id)
        git.object_store.add_object(root)
        if old_tree is not None and bytes(root.id) == old_tree:
            return None
        newest = max(checkpoints, key=lambda c: int(str(c.fields()["time"])))
        fields = newest.fields()
        commit = Commit()
        commit.tree = root.id
        commit.parents = [old] if old_tree is not None and old is not None else []
        commit.author = commit.committer = IDENTITY
        commit.author_time = commit.commit_time = int(str(fields["time"])) // 1000
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = (
            b"steve event-log checkpoints\n\n"
            + f"Steve-Log: {fields['log']}\nSteve-Seq: {fields['seq']}\n".encode()
        )
        git.object_store.add_object(commit)
        name = GitRefName(CHECKPOINTS_REF)
        if old is None:
            ok = git.refs.add_if_new(name, commit.id, message=b"steve export-git")
        else:
            ok = git.refs.set_if_equals(name, old, commit.id, message=b"steve export-git")
    except FileLocked as exc:
        raise GitFailure("update refs/steve/checkpoints", f"locked by another git: {exc}") from exc
    except GIT_READ_ERRORS as exc:
        raise GitFailure("export checkpoints", str(exc)) from exc
    if not ok:
        raise GitFailure("export checkpoints", "the ref changed during the export; run it again")
    return bytes(commit.id).decode()


def export_checkpoints_to(
    path: Path, public_key: bytes, checkpoints: Sequence[SignedCheckpoint]
) -> str | None:
    """:func:`export_checkpoints` into the git repository at ``path``."""
    git = open_git(path)
    try:
        return export_checkpoints(git, public_key, checkpoints)
    finally:
        git.close()


def read_checkpoints_from(path: Path) -> tuple[bytes, list[SignedCheckpoint], list[str]] | None:
    """:func:`read_checkpoints` of the git repository at ``path``."""
    git = open_git(path)
    try:
        return read_checkpoints(git)
    finally:
        git.close()


def _subtree(git: GitRepo, tree: bytes, name: bytes) -> Tree | None:
    root = git[ObjectID(tree)]
    if not isinstance(root, Tree) or name not in root:
        return None
    _, sha = root[name]
    sub = git[sha]
    return sub if isinstance(sub, Tree) else None


def read_checkpoints(git: GitRepo) -> tuple[bytes, list[SignedCheckpoint], list[str]] | None:
    """The public key, the checkpoints and the problems found in ``refs/steve/checkpoints``
    (None when the mirror has no such ref)."""
    head = read_refs(git).get(GitRefName(CHECKPOINTS_REF))
    if head is None:
        return None
    problems: list[str] = []
    commit = git[head]
    if not isinstance(commit, Commit):
        return b"", [], [f"{CHECKPOINTS_REF.decode()} is not a commit"]
    root = git[commit.tree]
    assert isinstance(root, Tree)
    try:
        _, key_sha = root[b"public-key"]
        public_key = bytes.fromhex(git[key_sha].as_raw_string().decode().strip())
        Ed25519PublicKey.from_public_bytes(public_key)
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        return b"", [], [f"no valid public-key in {CHECKPOINTS_REF.decode()}: {exc}"]
    sub = _subtree(git, bytes(commit.tree), b"checkpoints")
    files: dict[bytes, bytes] = {}
    if sub is not None:
        files = {n: git[s].as_raw_string() for n, _, s in sub.iteritems()}
    out: list[SignedCheckpoint] = []
    for name in sorted(files):
        if not name.endswith(b".cbor"):
            if not name.endswith((b".sig", b".json")):
                problems.append(f"unexpected file checkpoints/{name.decode(errors='replace')}")
            continue
        stem = name[: -len(b".cbor")]
        where = f"checkpoints/{stem.decode(errors='replace')}"
        cp = SignedCheckpoint(files[name], files.get(stem + b".sig", b""))
        try:
            ok = cp.stem().encode() == stem and files.get(stem + b".json") == cp.to_json()
        except MalformedObject as exc:
            problems.append(f"{where}: {exc.detail}")
            continue
        if not ok:
            problems.append(f"{where}: the name or JSON does not match the signed record")
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(cp.signature, cp.message)
        except (InvalidSignature, ValueError):
            problems.append(f"{where}: the signature does not verify with the public key")
            continue
        out.append(cp)
    return public_key, out, problems
