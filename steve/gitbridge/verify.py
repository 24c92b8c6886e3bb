"""``verify_git``: audit an exported repository by hash, without STEVE's key.

Everything needed is in the git repository.  For every commit reachable from
the chosen refs (default: all), the ``Steve-Object`` trailer names the
manifest and :func:`verify_git` checks that

- ``manifest.cbor`` hashes (BLAKE3) to that id and decodes canonically
  (the strict decoder) to a manifest of the ``Steve-Kind``;
- ``manifest.json`` is exactly what ``steve cat-manifest`` prints for it;
- the git parents' trailers are the manifest's parents, in order;
- every attachment re-hashes, as STEVE objects, to the id the body gives
  (blobs and trees; a manifest or tag link is a symlink holding the id);
- the tree has nothing else in it, and the commit is byte for byte the one
  the export would write (identity, dates, message, no extra headers).

Annotated tags are rebuilt as STEVE tag objects and hashed against their
trailer.  Problems are returned, not raised (the CLI decides the exit).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from dulwich.objects import Commit as GitCommit
from dulwich.objects import Tag as GitTag
from dulwich.objects import Tree as GitTree

from steve.errors import MalformedObject, NotRepresentable
from steve.gitbridge.convert import (
    DIR_MODE,
    FILE_MODE,
    LINK_MODE,
    Nested,
    ToSteve,
    build_commit,
    build_tag,
    manifest_files,
    parse_git,
    place,
    write_nested,
)
from steve.gitbridge.layout import (
    MANIFEST_CBOR,
    MANIFEST_JSON,
    Trailers,
    attachments,
    manifest_json,
    parse_trailers,
    split_signatures,
)
from steve.gitbridge.pack import BLOB, COMMIT, TAG, TREE, git_sha
from steve.gitbridge.target import (
    GitRepo,
    object_info,
    open_git,
    open_object,
    read_raw,
    read_refs,
    resolve_rev,
)
from steve.gitbridge.witness import CHECKPOINTS_REF, read_checkpoints
from steve.objects.model import Manifest, ObjectType, Person, Tag, decode_object, hash_object
from steve.objects.oid import ObjectId
from steve.repo import hash_only

__all__ = ["VerifyProblem", "VerifyReport", "verify_git"]


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    git_id: str  # the commit or tag, hex
    steve_id: str | None  # its Steve-Object trailer, if it has one
    what: str

    def __str__(self) -> str:
        return f"{self.git_id} {self.steve_id or '-'} {self.what}"


@dataclass
class VerifyReport:
    path: Path
    commits: int = 0
    tags: int = 0
    problems: list[VerifyProblem] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # refs at trees/blobs: no id to check
    checkpoints: int = 0  # event-log checkpoints in refs/steve/checkpoints, signatures checked

    @property
    def ok(self) -> bool:
        return not self.problems


class _Verifier:
    def __init__(self, git: GitRepo, report: VerifyReport) -> None:
        self.git = git
        self.report = report
        self.to_steve = ToSteve(self._read, hash_only, lambda sha: open_object(git, sha))
        self.trailers: dict[bytes, Trailers | None] = {}
        self.trees: dict[bytes, dict[bytes, tuple[int, bytes]]] = {}

    def _read(self, sha: bytes) -> tuple[int, bytes]:
        return read_raw(self.git, sha)

    def problem(self, sha: bytes, steve: ObjectId | None, what: str) -> None:
        self.report.problems.append(
            VerifyProblem(sha.hex(), steve.hex if steve is not None else None, what)
        )

    def trailer_of(self, sha: bytes) -> Trailers | None:
        if sha not in self.trailers:
            type_num, data = self._read(sha)
            if type_num == COMMIT:
                message = parse_git(GitCommit, data, sha.hex()).message
            elif type_num == TAG:
                message = parse_git(GitTag, data, sha.hex()).message
            else:
                message = b""
            self.trailers[sha] = parse_trailers(message)
        return self.trailers[sha]

    def entries(self, sha: bytes) -> dict[bytes, tuple[int, bytes]]:
        known = self.trees.get(sha)
        if known is None:
            type_num, data = self._read(sha)
            if type_num != TREE:
                raise NotRepresentable(sha.hex(), "expected a tree")
            tree = parse_git(GitTree, data, sha.hex())
            known = {
                item.path: (item.mode, bytes.fromhex(item.sha.decode()))
                for item in tree.iteritems()
            }
            if len(self.trees) > 4096:
                self.trees.clear()
            self.trees[sha] = known
        return known

    def lookup(self, tree: bytes, path: tuple[str, ...]) -> tuple[int, bytes] | None:
        entry: tuple[int, bytes] | None = (DIR_MODE, tree)
        for part in path:
            if entry is None or entry[0] != DIR_MODE:
                return None
            entry = self.entries(entry[1]).get(part.encode())
        return entry

    # --- objects ----------------------------------------------------------------------

    def steve_id(self, sha: bytes, type_num: int) -> tuple[ObjectId, ObjectType] | None:
        """The STEVE id and type of a tag's target (None: it has none)."""
        if type_num in (COMMIT, TAG):
            tr = self.trailer_of(sha)
            if tr is None:
                return None
            try:
                return tr.oid, ObjectType(tr.kind)
            except ValueError:
                return None
        if type_num == TREE:
            return self.to_steve.tree(sha), ObjectType.TREE
        return self.to_steve.blob(sha), ObjectType.BLOB

    def tag(self, sha: bytes, data: bytes) -> tuple[bytes, int]:
        """Check an annotated tag; returns its target (id, type) to go on with."""
        self.report.tags += 1
        tag = parse_git(GitTag, data, sha.hex())
        target_cls, target_hex = tag.object
        target = bytes.fromhex(target_hex.decode())
        target_type = target_cls.type_num
        tr = parse_trailers(tag.message)
        if tr is None or tr.kind != ObjectType.TAG.value:
            self.problem(sha, None, "annotated tag without Steve-Object/Steve-Kind: tag trailers")
            return target, target_type
        try:
            found = self.steve_id(target, target_type)
            if found is None:
                self.problem(sha, tr.oid, "the tagged object has no Steve-Object id")
                return target, target_type
            if tag.tagger is None:
                raise NotRepresentable(sha.hex(), "no tagger")
            name, _, email = tag.tagger.decode().rpartition(" <")
            body = tr.body.decode()
            rebuilt = Tag(
                object=found[0],
                object_type=found[1],
                name=tag.name.decode(),
                tagger=Person(name, email.removesuffix(">")),
                time=tag.tag_time,
                tz=tag.tag_timezone // 60,
                message=body,
            )
            oid, _ = hash_object(rebuilt)
            signed = split_signatures(body)
            if oid != tr.oid and signed is not None:  # a signed tag: its block split off
                rebuilt = replace(rebuilt, message=signed[0], signatures=signed[1])
                oid, _ = hash_object(rebuilt)
        except (UnicodeDecodeError, NotRepresentable, MalformedObject) as exc:
            self.problem(sha, tr.oid, f"the tag cannot be rebuilt as a STEVE tag: {exc}")
            return target, target_type
        if oid != tr.oid:
            self.problem(sha, tr.oid, f"the tag's fields hash to {oid.hex}, not its trailer id")
        elif git_sha(TAG, build_tag(target, target_type, oid, rebuilt)) != sha:
            self.problem(sha, tr.oid, "the tag differs from what the export writes")
        return target, target_type

    def commit(self, sha: bytes, data: bytes) -> list[bytes]:
        """Check one commit; returns its parents to walk."""
        self.report.commits += 1
        commit = parse_git(GitCommit, data, sha.hex())
        parents = [bytes.fromhex(p.decode()) for p in commit.parents]
        tr = parse_trailers(commit.message)
        self.trailers[sha] = tr
        if tr is None:
            self.problem(sha, None, "no Steve-Object/Steve-Kind trailers: not a STEVE export")
            return parents
        oid = tr.oid
        tree = bytes.fromhex(commit.tree.decode())
        files = self.entries(tree)
        cbor_entry = files.get(MANIFEST_CBOR.encode())
        if cbor_entry is None or cbor_entry[0] != FILE_MODE:
            self.problem(sha, oid, f"no {MANIFEST_CBOR} file")
            return parents
        type_num, stored = self._read(cbor_entry[1])
        if type_num != BLOB or ObjectId.of(stored) != oid:
            self.problem(sha, oid, f"{MANIFEST_CBOR} does not hash (BLAKE3) to the Steve-Object id")
            return parents
        try:
            manifest = decode_object(stored)
        except MalformedObject as exc:
            self.problem(sha, oid, f"{MANIFEST_CBOR} is not a canonical object: {exc.detail}")
            return parents
        if not isinstance(manifest, Manifest) or manifest.kind.value != tr.kind:
            self.problem(sha, oid, f"{MANIFEST_CBOR} is a {manifest.type.value}, not a {tr.kind}")
            return parents
        rendered = manifest_json(oid, manifest)
        json_entry = files.get(MANIFEST_JSON.encode())
        json_sha = git_sha(BLOB, rendered)
        if json_entry is None or json_entry != (FILE_MODE, json_sha):
            self.problem(sha, oid, f"{MANIFEST_JSON} differs from what {MANIFEST_CBOR} shows")
            return parents
        parent_ids = [self.trailer_of(p) for p in parents]
        if [t.oid if t else None for t in parent_ids] != list(manifest.parents):
            self.problem(sha, oid, "the git parents are not the manifest's parents")
            return parents
        root: Nested = manifest_files(json_sha, cbor_entry[1])
        for path, link in attachments(manifest):
            entry = self.lookup(tree, path)
            where = "/".join(path)
            if entry is None:
                self.problem(sha, oid, f"attachment {where} is missing")
                return parents
            mode, child = entry
            if mode == LINK_MODE:
                type_num, text = self._read(child)
                good = type_num == BLOB and text == link.hex.encode()
            elif mode in (FILE_MODE, DIR_MODE):
                try:
                    good = self.to_steve.file(mode, child) == link
                except NotRepresentable:
                    good = False
            else:
                good = False
            if not good:
                self.problem(sha, oid, f"attachment {where} does not hash to {link.hex}")
                return parents
            place(root, path, entry)
        if write_nested(root, git_sha) != tree:
            self.problem(sha, oid, "the tree holds entries the manifest does not explain")
        elif git_sha(COMMIT, build_commit(tree, parents, oid, manifest)) != sha:
            self.problem(sha, oid, "the commit differs from what the export writes")
        elif manifest.kind is ObjectType.RESEARCH:
            for why in self.citations(tree, manifest):
                self.problem(sha, oid, why)
        return parents

    def citations(self, tree: bytes, manifest: Manifest) -> list[str]:
        """A research manifest's excerpts re-found at their locators in the exported
        ``sources/<i>/text`` files, and its quotes in their excerpts (see
        :func:`steve.research.cite.check_locators`)."""
        from steve.errors import SteveError
        from steve.objects.schemas import read_body
        from steve.objects.schemas.research import ResearchManifest, Source
        from steve.research.cite import check_locators

        try:
            body = read_body(manifest.kind, manifest.version, manifest.body)
        except SteveError:
            return []  # not a valid body: `steve verify` says so, with the key
        if not isinstance(body, ResearchManifest):
            return []
        index = {s.id: i for i, s in enumerate(body.sources)}

        def text_of(source: Source) -> str | None:
            entry = self.lookup(tree, ("sources", str(index[source.id]), "text"))
            if entry is None or entry[0] != FILE_MODE:
                return None
            type_num, data = self._read(entry[1])
            try:
                return data.decode("utf-8") if type_num == BLOB else None
            except UnicodeDecodeError:
                return None

        problems = check_locators(body, text_of)
        return [f"citation: {path}: {rule}" for path, rule in problems]

    def walk(self, starts: list[bytes]) -> None:
        stack = list(starts)
        seen: set[bytes] = set()
        while stack:
            sha = stack.pop()
            if sha in seen:
                continue
            seen.add(sha)
            try:
                type_num, _ = object_info(self.git, sha)  # a tagged blob is not read whole
                if type_num == COMMIT:
                    stack.extend(reversed(self.commit(sha, self._read(sha)[1])))
                elif type_num == TAG:
                    stack.append(self.tag(sha, self._read(sha)[1])[0])
            except NotRepresentable as exc:
                self.problem(sha, None, f"{exc.message}: {exc.detail}")


def _starts(git: GitRepo, path: Path, rev: str | None, report: VerifyReport) -> list[bytes]:
    if rev is None:
        chosen = sorted(
            (k.decode(), v)
            for k, v in read_refs(git).items()
            if k not in (b"HEAD", CHECKPOINTS_REF)
        )
    else:
        chosen = [(rev, resolve_rev(git, path, rev))]
    out = []
    for name, value in chosen:
        sha = bytes.fromhex(value.decode())
        try:
            type_num, _ = object_info(git, sha)
        except NotRepresentable as exc:  # refused from its headers: a problem, not the end
            report.problems.append(VerifyProblem(sha.hex(), None, f"{exc.message}: {exc.detail}"))
            continue
        if type_num in (COMMIT, TAG):
            out.append(sha)
        else:
            report.unchecked.append(f"{name}: a {'tree' if type_num == TREE else 'blob'}")
    return out


def verify_git(path: Path, rev: str | None = None) -> VerifyReport:
    """Verify the exported repository at ``path`` (from ``rev``, default every ref)."""
    git = open_git(path)
    try:
        report = VerifyReport(path)
        verifier = _Verifier(git, report)
        verifier.walk(_starts(git, path, rev, report))
        if rev is None and (witnessed := read_checkpoints(git)) is not None:
            _, checkpoints, problems = witnessed
            report.checkpoints = len(checkpoints)
            for why in problems:
                report.problems.append(VerifyProblem(CHECKPOINTS_REF.decode(), None, why))
        return report
    finally:
        git.close()
