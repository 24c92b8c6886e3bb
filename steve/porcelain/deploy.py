"""DEPLOY (M10, F-DEP-001..004): write certified artifacts to a folder, under the host prompt rule.

    >>> plan = plan_deploy(repo, Path("/srv/tool"))        # the dry run: nothing written
    >>> print(plan.preview.text())
    >>> report = deploy(repo, Path("/srv/tool"), gate=gate_settings(repo), prompt=ask,
    ...                 clock=now_s, actor="ana")
    >>> report.receipt, [w.path for w in report.written]

What may be deployed (:func:`plan_deploy`): the outputs of the run's *build*
nodes (:func:`steve.porcelain.build.split_nodes`), as their current receipts
(``refs/receipts/<run>/<node>``) name them, and only if the run's test
certificate passed and lists every one of those receipts.  A missing or
failing certificate (STEVE-DEPLOY-001/002) or one that covers another build
(STEVE-DEPLOY-003) is refused unless the caller overrides it with a reason:
the override is recorded in the receipt and named in its preview.  Every
artifact's bytes are re-hashed before anything is decided, so a tampered
artifact (its stored bytes no longer match its id) is refused
(STEVE-DEPLOY-004) before the gate is even asked.  Symlinks and other
non-regular entries are refused (STEVE-DEPLOY-009); so is a target that
exists and is not an empty folder (STEVE-DEPLOY-005).

:func:`deploy` runs the deploy as a host action
(:func:`steve.porcelain.hostaction.perform`): the gate decides, the CLI's
prompt or a recorded approval answers, and every decision is frozen in a
``deploy_receipt`` (``refs/runs/<run>/deploy_receipt``).  An approved deploy
writes into a temporary folder beside the target (files and folders
fsynced), reads every file back and re-hashes it (STEVE-DEPLOY-010 on a
mismatch), renames the folder into place, and then freezes the receipt with
the written digests and moves the run TEST -> DEPLOY through the state
machine, in one transaction.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from steve.errors import (
    ArtifactTampered,
    CertificateFailed,
    CertificateStale,
    CorruptObject,
    DeployTargetExists,
    DeployVerifyFailed,
    DeployWriteFailed,
    NoCertificate,
    NothingToDeploy,
    ObjectNotFound,
    OverrideNeedsReason,
    PlanNotBuilt,
    SteveError,
    UnsafeArtifact,
)
from steve.exec.tarconv import IterReader
from steve.objects.model import Mode, ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas.receipts import (
    DeployedFile,
    DeployOverride,
    DeployReceipt,
    HostDecision,
    WrittenFile,
)
from steve.porcelain.build import plan_of, split_nodes
from steve.porcelain.freeze import frozen_payload, store_manifest
from steve.porcelain.gate import Action, ActionKind
from steve.porcelain.hostaction import GateSettings, Preview, Prompt, perform
from steve.porcelain.records import envelope, load_plan, read_certificate, read_receipt, receipt_ref
from steve.porcelain.runs import (
    ALLOWED,
    Run,
    Stage,
    Transition,
    check_transition,
    find_run,
    run_manifests,
    run_ref,
    transition_in,
    transition_payload,
)
from steve.repo import Repo

__all__ = ["DeployFile", "DeployPlan", "DeployReport", "deploy", "plan_deploy"]

MAX_FILES = 100_000


@dataclass(frozen=True, slots=True)
class DeployFile:
    path: str  # relative to the target, / separated
    blob: ObjectId
    size: int
    executable: bool


@dataclass(frozen=True, slots=True)
class DeployPlan:
    """What a deploy would do: the dry run."""

    run: Run
    target: Path
    certificate: ObjectId | None
    builds: tuple[ObjectId, ...]
    artifacts: tuple[ObjectId, ...]
    files: tuple[DeployFile, ...]
    unverified: str | None  # why no passing certificate covers the build (an override)
    override_reason: str | None
    action: Action
    preview: Preview

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True, slots=True)
class DeployReport:
    plan: DeployPlan
    receipt: ObjectId
    decision: HostDecision
    written: tuple[WrittenFile, ...]
    transition: Transition | None


# --- what may be deployed --------------------------------------------------------------


def _current_build(repo: Repo, run: Run) -> tuple[ObjectId, list[tuple[str, ObjectId]]]:
    """The plan and (node, receipt) of every build node, in topological order."""
    plan_id = plan_of(repo, run)
    build_ids, _ = split_nodes(load_plan(repo, plan_id))
    out = []
    for nid in build_ids:
        ref = repo.refs.resolve(receipt_ref(run.id, nid))
        if ref is None or ref.target is None:
            raise PlanNotBuilt(run.id, nid)
        out.append((nid, ref.target))
    return plan_id, out


def _verification(
    repo: Repo, run: Run, receipts: Iterable[ObjectId]
) -> tuple[ObjectId | None, SteveError | None]:
    """The run's certificate and, if it does not vouch for ``receipts``, the refusal."""
    cert_id = run_manifests(repo, run.id).get(ObjectType.TEST_CERTIFICATE)
    if cert_id is None:
        return None, NoCertificate(run.id)
    cert = read_certificate(repo, cert_id)
    if cert.verdict != "pass":
        return cert_id, CertificateFailed(cert_id.hex, len(cert.failures))
    if cert.replay is not None:
        return cert_id, CertificateStale(cert_id.hex, "it is a replay verdict, not a test")
    covered = set(cert.builds)
    missing = [r.hex[:12] for r in receipts if r.hex not in covered]
    if missing:
        why = f"it does not cover the current build receipts {', '.join(missing)}"
        return cert_id, CertificateStale(cert_id.hex, why)
    return cert_id, None


def _entries(repo: Repo, name: str, oid: ObjectId) -> Iterator[tuple[str, ObjectId, bool]]:
    """(path, blob, executable) of every file of one output."""
    kind = repo.object_type(oid)
    if kind is ObjectType.BLOB:
        yield name, oid, False
        return
    for e in repo.ls_tree(oid, recursive=True, prefix=f"{name}/"):
        if e.mode not in (Mode.FILE, Mode.EXECUTABLE):
            raise UnsafeArtifact(e.path, f"a {e.mode.name.lower()} entry (only files are deployed)")
        yield e.path, e.oid, e.mode is Mode.EXECUTABLE


def _verified_size(repo: Repo, path: str, oid: ObjectId) -> int:
    """The content size of blob ``oid`` after re-hashing its stored bytes (ArtifactTampered
    if they no longer match the id)."""
    size = 0

    def counted() -> Iterator[bytes]:
        nonlocal size
        for chunk in repo.iter_content(oid):
            size += len(chunk)
            yield chunk

    try:
        again = Repo.hash_stream(io.BufferedReader(IterReader(counted()), 1 << 16))
    except CorruptObject as exc:
        raise ArtifactTampered(path, oid.hex, exc.detail) from None
    except ObjectNotFound as exc:
        raise ArtifactTampered(path, oid.hex, f"missing: {exc.detail}") from None
    if again != oid:
        raise ArtifactTampered(path, oid.hex, f"its content hashes to {again.hex[:12]}")
    return size


def _absolute(target: Path) -> Path:
    """``target`` made absolute through its parent's real path (the target itself is
    not followed: a symlink there is refused)."""
    full = target if target.is_absolute() else Path.cwd() / target
    if full.name in ("", ".", ".."):
        raise DeployWriteFailed(str(target), "name a new folder to deploy to")
    parent = full.parent.resolve()
    if not parent.is_dir():
        raise DeployWriteFailed(str(target), f"the parent folder {parent} does not exist")
    return parent / full.name


def _target_problem(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise DeployTargetExists(str(target))
    if target.is_dir() and any(target.iterdir()):
        raise DeployTargetExists(str(target))


def plan_deploy(
    repo: Repo,
    target: Path,
    *,
    run: str | None = None,
    override_reason: str | None = None,
    override: bool = False,
) -> DeployPlan:
    """The dry run of a deploy of the run's certified artifacts to ``target`` (see the
    module docstring): refuses, with a coded error, anything it would not deploy."""
    if override and not (override_reason or "").strip():
        raise OverrideNeedsReason()
    found = find_run(repo, run)
    target = _absolute(target)
    _, built = _current_build(repo, found)
    receipts = [r for _, r in built]
    cert_id, refusal = _verification(repo, found, receipts)
    if refusal is not None and not override:
        raise refusal
    unverified = None if refusal is None else str(refusal)
    if unverified is None and found.stage is not Stage.DEPLOY:
        check_transition(found.id, found.stage, Stage.DEPLOY)
    _target_problem(target)
    files: dict[str, DeployFile] = {}
    artifacts: list[ObjectId] = []
    for _, rid in built:
        for name, oid in read_receipt(repo, rid).outputs.items():
            artifacts.append(ObjectId.from_hex(oid))
            for path, blob, exe in _entries(repo, name, ObjectId.from_hex(oid)):
                if path in files or any(
                    p.startswith(path + "/") or path.startswith(p + "/") for p in files
                ):
                    raise UnsafeArtifact(path, "two build outputs write this path")
                if len(files) >= MAX_FILES:
                    raise UnsafeArtifact(path, f"more than {MAX_FILES} files")
                files[path] = DeployFile(path, blob, _verified_size(repo, path, blob), exe)
    if not files:
        raise NothingToDeploy(found.id)
    ordered = tuple(files[p] for p in sorted(files))
    reason = override_reason if unverified is not None else None
    description: dict[str, object] = {
        "run": found.id,
        "target": str(target),
        "certificate": cert_id.hex if cert_id is not None and unverified is None else None,
        "unverified": unverified,
        "files": [[f.path, f.blob.hex, f.executable] for f in ordered],
    }
    action = Action.of(
        ActionKind.DEPLOY,
        str(target),
        description,
        f"deploy {len(ordered)} files of run {found.name} to {target}",
    )
    plan = DeployPlan(
        found,
        target,
        cert_id,
        tuple(receipts),
        tuple(dict.fromkeys(artifacts)),
        ordered,
        unverified,
        reason,
        action,
        Preview("", ()),
    )
    return _with_preview(plan)


def _with_preview(plan: DeployPlan) -> DeployPlan:
    lines = [
        f"run          {plan.run.id} ({plan.run.name}, {plan.run.stage.value})",
        f"certificate  {plan.certificate.hex if plan.certificate else '(none)'}",
        f"action       {plan.action.digest.hex}",
    ]
    if plan.unverified is not None:
        lines += [
            f"OVERRIDE     deploying UNVERIFIED artifacts: {plan.unverified}",
            f"reason       {plan.override_reason}",
        ]
    lines += [f"  {f.blob.hex[:12]}  {f.size:>10}  {f.path}" for f in plan.files]
    title = f"deploy {len(plan.files)} files ({plan.size} bytes) to {plan.target}"
    return replace(plan, preview=Preview(title, tuple(lines)))


# --- writing ------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_files(repo: Repo, plan: DeployPlan) -> tuple[WrittenFile, ...]:
    """Write ``plan``'s files atomically (see the module docstring); the re-hashed
    digests of what was written."""
    target = plan.target
    _target_problem(target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.steve-deploy-", dir=target.parent))
    except OSError as exc:
        raise DeployWriteFailed(str(target), str(exc)) from exc
    try:
        dirs = {staging}
        for f in plan.files:
            dest = staging / f.path
            for parent in reversed(dest.relative_to(staging).parents[:-1]):
                folder = staging / parent
                if folder not in dirs:
                    folder.mkdir(mode=0o755)
                    dirs.add(folder)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(dest, flags, 0o600)
            with os.fdopen(fd, "wb") as fh:
                for chunk in repo.iter_content(f.blob):
                    fh.write(chunk)
                fh.flush()
                os.fchmod(fh.fileno(), 0o755 if f.executable else 0o644)
                os.fsync(fh.fileno())
        written = []
        for f in plan.files:
            with (staging / f.path).open("rb") as fh:
                again = Repo.hash_stream(fh)
            if again != f.blob:
                raise DeployVerifyFailed(f.path, f.blob.hex, again.hex)
            written.append(WrittenFile(path=f.path, blob=again.hex))
        for folder in dirs:
            _fsync_dir(folder)
        staging.chmod(0o755)
        _target_problem(target)
        staging.rename(target)
        _fsync_dir(target.parent)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DeployWriteFailed(str(target), str(exc)) from exc
    except CorruptObject as exc:  # changed since the dry run re-hashed it
        shutil.rmtree(staging, ignore_errors=True)
        raise ArtifactTampered(str(target), exc.oid, exc.detail) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return tuple(written)


# --- the host action ----------------------------------------------------------------------


class _Deploy:
    """The deploy as a :class:`~steve.porcelain.hostaction.HostAction`."""

    def __init__(
        self, repo: Repo, plan: DeployPlan, clock: Callable[[], int], tz: int, actor: str
    ) -> None:
        self.repo, self.plan, self.clock, self.tz, self.actor = repo, plan, clock, tz, actor
        self.receipt: ObjectId | None = None
        self.transition: Transition | None = None

    def gate_action(self) -> Action:
        return self.plan.action

    def describe(self) -> str:
        return self.plan.preview.title

    def dry_run(self) -> Preview:
        return self.plan.preview

    def execute(self) -> tuple[WrittenFile, ...]:
        return write_files(self.repo, self.plan)

    def record(
        self, decision: HostDecision, result: tuple[WrittenFile, ...] | None
    ) -> ObjectId | None:
        repo, plan, now = self.repo, self.plan, self.clock()
        preview = repo.write_blob(plan.preview.text().encode("utf-8"))
        override = None
        if plan.unverified is not None:
            assert plan.override_reason is not None
            override = DeployOverride(
                who=self.actor, why=plan.override_reason, at=now, unverified=plan.unverified
            )
        body = DeployReceipt(
            certificate=None if plan.unverified is not None else _hex(plan.certificate),
            builds=[b.hex for b in plan.builds],
            artifacts=[a.hex for a in plan.artifacts],
            files=[
                DeployedFile(path=f.path, blob=f.blob.hex, size=f.size, executable=f.executable)
                for f in plan.files
            ],
            target=str(plan.target),
            dry_run_preview=preview.hex,
            decision=decision,
            written=list(result or ()),
            override=override,
        )
        ref = run_ref(plan.run.id, ObjectType.DEPLOY_RECEIPT)
        previous = run_manifests(repo, plan.run.id).get(ObjectType.DEPLOY_RECEIPT)
        upstream = [plan.certificate] if plan.certificate is not None else list(plan.builds)
        parents = [p for p in (previous, *upstream) if p is not None]
        manifest = envelope(repo, body, parents=parents, now=now, tz=self.tz)
        deployed = result is not None
        with repo.transaction() as tx:
            oid = store_manifest(
                repo,
                manifest,
                ref=ref,
                ref_old=previous,
                message=f"steve deploy: {decision.decision} (run {plan.run.id})",
                tx=tx,
            )
            change = None
            current = tx.read_run(plan.run.id)
            stage = Stage(current.stage) if current is not None else plan.run.stage
            if deployed and stage is not Stage.DEPLOY and Stage.DEPLOY in ALLOWED[stage]:
                change = transition_in(
                    repo, tx, plan.run.id, Stage.DEPLOY, "steve deploy", now, self.actor, stage
                )
            tx.emit("manifest.frozen", frozen_payload(manifest, oid, ref), plan.run.id)
            outcome = "finished" if deployed else "refused"
            if not deployed and decision.decision == "approved":
                outcome = "failed"  # approved, but writing failed: nothing is in place
            tx.emit(
                f"deploy.{outcome}",
                {
                    "receipt": oid.hex,
                    "decision": decision.decision,
                    "via": decision.via,
                    "target": str(plan.target),
                    "files": len(body.written),
                    "override": override is not None,
                },
                plan.run.id,
            )
            if change is not None:
                tx.emit("run.transition", transition_payload(change), run_id=plan.run.id)
        self.receipt, self.transition = oid, change
        return oid


def _hex(oid: ObjectId | None) -> str | None:
    return None if oid is None else oid.hex


def deploy(
    repo: Repo,
    target: Path,
    *,
    run: str | None = None,
    override_reason: str | None = None,
    override: bool = False,
    gate: GateSettings,
    prompt: Prompt | None,
    clock: Callable[[], int],
    tz: int = 0,
    actor: str = "steve",
) -> DeployReport:
    """Deploy the run's certified artifacts to ``target`` (see the module docstring)."""
    plan = plan_deploy(repo, target, run=run, override_reason=override_reason, override=override)
    host = _Deploy(repo, plan, clock, tz, actor)
    done = perform(repo, host, gate=gate, prompt=prompt, actor=actor, run_id=plan.run.id)
    assert done.record is not None
    return DeployReport(plan, done.record, done.decision, done.result, host.transition)
