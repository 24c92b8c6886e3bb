"""Replay by hash: re-run a receipt's step from its pinned inputs and compare outputs.

    >>> report = replay(repo, DockerRunner(engine), receipt_id)
    >>> report.verdict, report.differing
    ('match', [])

:func:`replay` rebuilds the step from the receipt alone (image digest, input
ids by name, command, env, declared outputs, work dir, timeout and the
canonical container policy), runs it, freezes a build receipt of the
re-execution (parent: the original receipt) and compares the outputs path
by path (every file and symlink under each declared output, with its mode).
The verdict is

* ``match``: every path has the same mode and id (and the exit status is the same);
* ``nondeterministic``: something differs, but the plan node declared
  non-determinism (the receipt's ``nondeterminism``);
* ``mismatch``: something differs; ``differing`` lists the paths.

The verdict is frozen as a ``test_certificate`` whose ``replay`` section
names both receipts (verdict ``fail`` exactly on a mismatch), with the
original receipt as its parent, and the ref ``refs/replays/<receipt id>``
moves to it.  :func:`replay_all` replays every node receipt of a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from steve.errors import InvalidInput, ObjectNotFound
from steve.exec import ContainerPolicy, HostMountSpec, Runner, StepSpec
from steve.objects.model import Mode, ObjectType
from steve.objects.oid import ObjectId
from steve.objects.schemas.failures import FailureClass
from steve.objects.schemas.receipts import (
    BuildReceipt,
    DifferingPath,
    Failure,
    PolicyVerdict,
    ReplayVerdict,
    TestCertificate,
)
from steve.porcelain import actioncache
from steve.porcelain.freeze import store_manifest
from steve.porcelain.records import (
    RECEIPT_REF_PREFIX,
    envelope,
    freeze_record,
    judge,
    junit_evidence,
    load_plan,
    read_receipt,
    step_receipt,
)
from steve.porcelain.runs import find_run
from steve.porcelain.secrets import redactor_for, resolve
from steve.progress import Progress
from steve.repo import Repo

__all__ = ["ReplayReport", "compare_outputs", "replay", "replay_all", "replay_ref"]

REPLAY_REF_PREFIX = "refs/replays/"
ReplayVerdictName = Literal["match", "mismatch", "nondeterministic"]
REPLAY_RUN = "replay"


@dataclass(frozen=True, slots=True)
class Difference:
    path: str
    expected: ObjectId | None
    actual: ObjectId | None


@dataclass(frozen=True, slots=True)
class ReplayReport:
    receipt: ObjectId
    node: str
    replayed: ObjectId
    verdict_id: ObjectId
    verdict: ReplayVerdictName
    differing: list[Difference] = field(default_factory=list)
    key_matches: bool = True

    @property
    def ok(self) -> bool:
        return self.verdict != "mismatch"


def replay_ref(receipt: ObjectId) -> str:
    return f"{REPLAY_REF_PREFIX}{receipt.hex}"


def spec_from_receipt(repo: Repo, receipt: ObjectId, body: BuildReceipt) -> StepSpec:
    """The step exactly as the receipt pinned it."""
    if body.policy is None:
        raise InvalidInput(
            "the receipt records no container policy", f"{receipt.hex}: made before replay support"
        )
    inputs = {name: ObjectId.from_hex(h) for name, h in body.inputs.items()}
    if not inputs and body.input_trees:
        raise InvalidInput("the receipt does not name its inputs", receipt.hex)
    for oid in inputs.values():
        if not repo.has_object(oid):
            raise ObjectNotFound(oid.hex)
    p = body.policy
    policy = ContainerPolicy(
        network_mode=p.network_mode,
        cap_drop=tuple(p.cap_drop),
        cap_add=tuple(p.cap_add),
        security_opt=tuple(p.security_opt),
        privileged=p.privileged,
        read_only_root=p.read_only_root,
        tmpfs=dict(p.tmpfs),
        pids_limit=p.pids_limit,
        memory_bytes=p.memory_bytes,
        nano_cpus=p.nano_cpus,
        user=p.user,
        host_mounts=tuple(
            HostMountSpec(source=m.source, target=m.target, read_only=m.read_only)
            for m in p.host_mounts
        ),
        host_pid=p.host_pid,
        host_ipc=p.host_ipc,
        host_userns=p.host_userns,
        granted=tuple(p.granted),
    )
    resolved = resolve(repo, body.secrets) if body.secrets else {}
    for name, version in body.secrets.items():
        if resolved[name].version != version:
            raise InvalidInput(
                "the receipt's secret has been rotated",
                f"{name}: the receipt used version {version}, the vault holds version "
                f"{resolved[name].version}; a replay needs the same value",
            )
    return StepSpec(
        run_id=REPLAY_RUN,
        step_id=body.node,
        image=body.image,
        command=tuple(body.command),
        env=dict(body.env),
        inputs=inputs,
        outputs=tuple(body.declared_outputs),
        policy=policy,
        timeout_s=None if body.timeout_ms is None else body.timeout_ms / 1000,
        workdir=body.workdir,
        secret_versions=dict(body.secrets),
        secret_values={name: s.value for name, s in resolved.items()},
        redactor=redactor_for(repo, resolved),
    )


def _node_kind(repo: Repo, body: BuildReceipt) -> str:
    plan = load_plan(repo, ObjectId.from_hex(body.plan))
    return next((n.kind for n in plan.nodes if n.id == body.node), "run")


NodeLogCallback = Callable[[str, str, bytes], None]
"""``(node id, stream name, bytes)`` for each piece of a step's stdout/stderr."""


def now_s() -> int:
    return int(time.time())


def _flatten(repo: Repo, name: str, oid: ObjectId) -> Iterator[tuple[str, tuple[int, ObjectId]]]:
    if repo.object_type(oid) is ObjectType.TREE:
        for e in repo.ls_tree(oid, recursive=True, prefix=name + "/"):
            yield e.path, (int(e.mode), e.oid)
    else:
        yield name, (int(Mode.FILE), oid)


def compare_outputs(
    repo: Repo, expected: dict[str, ObjectId], actual: dict[str, ObjectId]
) -> list[Difference]:
    """Paths whose mode or id differ between two output maps (missing = None)."""
    out: list[Difference] = []
    for name in sorted(set(expected) | set(actual)):
        a, b = expected.get(name), actual.get(name)
        if a == b:
            continue
        if a is None or b is None:
            out.append(Difference(name, a, b))
            continue
        left = dict(_flatten(repo, name, a))
        right = dict(_flatten(repo, name, b))
        found = False
        for path in sorted(set(left) | set(right)):
            x, y = left.get(path), right.get(path)
            if x != y:
                found = True
                out.append(Difference(path, x[1] if x else None, y[1] if y else None))
        if not found:  # e.g. an empty directory more or less
            out.append(Difference(name, a, b))
    return out


def replay(
    repo: Repo,
    runner: Runner,
    receipt: ObjectId,
    *,
    clock: Callable[[], int] = now_s,
    tz: int = 0,
    on_log: NodeLogCallback | None = None,
) -> ReplayReport:
    """Re-run ``receipt``'s step and freeze the verdict (see the module docstring)."""
    body = read_receipt(repo, receipt)
    spec = spec_from_receipt(repo, receipt, body)
    key_matches = actioncache.action_key(spec).hex == body.action_key
    log = None
    if on_log is not None:
        sink = on_log

        def log(stream: str, data: bytes) -> None:
            sink(body.node, stream, data)

    result = runner.run(repo, spec, log)
    kind = _node_kind(repo, body)
    evidence = junit_evidence(repo, spec.outputs, result.outputs) if kind == "test" else []
    failure, detail = judge(kind, result, evidence)
    again = step_receipt(
        plan=body.plan,
        node=body.node,
        spec=spec,
        action_key=body.action_key,
        result=result,
        failure=failure,
        detail=detail,
        grants=body.grants,
        toolchain=body.toolchain,
        nondeterminism=body.nondeterminism,
        truncated=result.truncated,
    )
    replayed = freeze_record(
        repo, again, parents=[receipt], now=result.finished_at // 1_000_000_000, tz=tz
    )
    expected = {k: ObjectId.from_hex(v) for k, v in body.outputs.items()}
    differing = compare_outputs(repo, expected, dict(result.outputs))
    if again.exit_status != body.exit_status:
        differing.insert(0, Difference(":exit_status", None, None))
    verdict: ReplayVerdictName
    if not differing:
        verdict = "match"
    elif body.nondeterminism:
        verdict = "nondeterministic"
    else:
        verdict = "mismatch"
    cert = verdict_certificate(receipt, replayed, body, verdict, differing, again)
    verdict_id = store_manifest(
        repo,
        envelope(repo, cert, parents=[receipt], now=clock(), tz=tz),
        ref=replay_ref(receipt),
        message=f"steve replay: {verdict}",
    )
    return ReplayReport(receipt, body.node, replayed, verdict_id, verdict, differing, key_matches)


def verdict_certificate(
    receipt: ObjectId,
    replayed: ObjectId,
    body: BuildReceipt,
    verdict: ReplayVerdictName,
    differing: list[Difference],
    again: BuildReceipt,
) -> TestCertificate:
    """The replay verdict as a test certificate (``fail`` exactly on a mismatch)."""
    failures = []
    if verdict == "mismatch":
        shown = ", ".join(d.path for d in differing[:10])
        failures.append(
            Failure(
                classification=FailureClass.REPLAY_MISMATCH.value,
                message=f"replay mismatch at {len(differing)} path(s): {shown}",
                evidence=replayed.hex,
                node=body.node,
            )
        )
    return TestCertificate(
        verdict="fail" if verdict == "mismatch" else "pass",
        builds=[receipt.hex, replayed.hex],
        evidence=[ref.blob for ref in again.logs],
        failures=failures,
        policy=PolicyVerdict(checked=1, passed=1, violations=[]),
        replay=ReplayVerdict(
            receipt=receipt.hex,
            replayed=replayed.hex,
            verdict=verdict,
            differing=[
                DifferingPath(
                    path=d.path,
                    expected=d.expected.hex if d.expected else None,
                    actual=d.actual.hex if d.actual else None,
                )
                for d in differing
            ],
            declared=list(body.nondeterminism),
        ),
    )


def run_receipts(repo: Repo, run_id: str) -> list[ObjectId]:
    """The latest receipt of every node of a run (``refs/receipts/<run>/*``)."""
    return [r.target for r in repo.list_refs(f"{RECEIPT_REF_PREFIX}{run_id}/") if r.target]


def replay_all(
    repo: Repo,
    runner: Runner,
    run: str | None = None,
    *,
    clock: Callable[[], int] = now_s,
    tz: int = 0,
    on_log: NodeLogCallback | None = None,
    on_replayed: Callable[[ReplayReport], None] | None = None,
    progress: Progress | None = None,
) -> list[ReplayReport]:
    """Replay every node receipt of ``run`` (default: the current run); ``progress``
    hears one phase "replay" counting receipts, the detail the receipt being replayed."""
    target = find_run(repo, run)
    receipts = run_receipts(repo, target.id)
    if not receipts:
        raise InvalidInput(
            "the run has no receipts",
            f"run {target.id}: no step has run yet",
            action="Run `steve build` first (or `steve test`), then replay its receipts.",
        )
    out = []
    if progress is not None:
        progress.start("replay", len(receipts), unit="steps")
    for receipt in receipts:
        if progress is not None:
            progress.advance(0, f"receipt {receipt.short()}")
        report = replay(repo, runner, receipt, clock=clock, tz=tz, on_log=on_log)
        if progress is not None:
            progress.advance(1, f"{report.node}: {report.verdict}")
        if on_replayed is not None:
            on_replayed(report)
        out.append(report)
    if progress is not None:
        progress.finish()
    return out
