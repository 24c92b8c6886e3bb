"""Sentinel tests on the real Docker Engine: a vault secret given to build steps
that print it in many ways is found nowhere afterwards, by a byte scan of the
exported git repository (every object decompressed by the real git), the event
log (decrypted, through the library) and every row of every table of both
encrypted databases (through SQLCipher with the key) except the vault's own.

Out of scope, and checked as such: encodings of the value (base64), see
docs/secrets.md.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from steve.errors import InvalidInput, SecretNotGranted
from steve.events import EventLog
from steve.exec import DockerRunner, Engine, ImageRecord, policy_for
from steve.gitbridge.export import export_git
from steve.objects.oid import ObjectId
from steve.objects.schemas.plan import PlanManifest
from steve.objects.schemas.receipts import BuildReceipt
from steve.porcelain import secrets as vault
from steve.porcelain.build import build
from steve.porcelain.records import read_receipt
from steve.porcelain.replay import replay
from steve.repo import Repo
from steve.store.sqlcipher import connect
from tests.gitenv import git_exe, scrubbed_git_env
from tests.stages.helpers import node, pinned, plan_draft, run_with_plan

SENTINEL = b"SNTL-7c1e0b5f-3d9a-4e28-b6f1-a0c2d4e6f809"
SPLIT = 13  # the halves are written with a sleep between them: two chunks

LEAK = (
    'echo "plain: $SENTINEL"; '
    f'first=$(printf %s "$SENTINEL" | cut -c1-{SPLIT}); '
    f'rest=$(printf %s "$SENTINEL" | cut -c{SPLIT + 1}-); '
    'printf "split: %s" "$first"; sleep 0.4; printf "%s\\n" "$rest"; '
    'printf "%s" "$first" >&2; sleep 0.4; printf "%s on stderr\\n" "$rest" >&2; '
    'echo "$SENTINEL" > /work/not-an-output.txt; echo "$SENTINEL" > /tmp/scratch; '
    'printf "%s" "$SENTINEL" | base64; '
    "mkdir -p out && echo fine > out/ok.txt"
)
FAIL = 'echo "about to fail with $SENTINEL" >&2; exit 3'


def secret_plan(image: str, src: ObjectId, *, grant: bool = True) -> dict[str, object]:
    grants = [
        {"node": n, "capability": "secrets", "reason": "sentinel test"} for n in ("leak", "fail")
    ]
    return plan_draft(
        [
            node(
                "leak",
                command=["sh", "-c", LEAK],
                inputs=[pinned("src", src)],
                outputs=["out"],
                image=image,
                secrets=["SENTINEL"],
            ),
            node("fail", command=["sh", "-c", FAIL], image=image, secrets=["SENTINEL"]),
        ],
        grants=grants if grant else [],
    )


def rows(db: Path, key: bytes, skip: frozenset[str] = frozenset()) -> Iterator[bytes]:
    """Every value of every row of every table of the encrypted database at ``db``."""
    kc = connect(db, key, create=False)
    try:
        tables = [
            t for (t,) in kc.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        assert tables
        for table in tables:
            if table in skip:
                continue
            for row in kc.conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        yield bytes(value)
                    elif value is not None:
                        yield str(value).encode("utf-8", "surrogateescape")
    finally:
        kc.conn.close()


def test_a_sentinel_secret_is_found_nowhere(
    repo: Repo, engine: Engine, busybox_image: ImageRecord, tmp_path: Path
) -> None:
    vault.set_secret(repo, "SENTINEL", SENTINEL)
    src = repo.write_tree(_source(tmp_path))
    run_with_plan(repo, secret_plan(busybox_image.id, src))
    with EventLog.attach(repo) as log:
        report = build(repo, DockerRunner(engine), events=log)
    outcomes = {o.node: o for o in report.outcomes}
    assert outcomes["leak"].failure is None, outcomes["leak"].detail
    assert outcomes["fail"].failure is not None  # exit 3: its receipt records why
    leak = read_receipt(repo, outcomes["leak"].receipt)  # type: ignore[arg-type]
    assert isinstance(leak, BuildReceipt)
    assert leak.secrets == {"SENTINEL": 1}  # the name and the version, not the value
    stdout = repo.read_blob(ObjectId.from_hex(leak.log("stdout").blob))  # type: ignore[union-attr]
    stderr = repo.read_blob(ObjectId.from_hex(leak.log("stderr").blob))  # type: ignore[union-attr]
    # the step did see the value (it is replaced, not missing) ...
    assert b"plain: [REDACTED:SENTINEL]\n" in stdout
    assert b"split: [REDACTED:SENTINEL]\n" in stdout  # written in two chunks
    assert stderr == b"[REDACTED:SENTINEL] on stderr\n"
    # ... and base64 of it is out of scope (documented): it passes as the step wrote it
    import base64

    assert base64.b64encode(SENTINEL) in stdout.replace(b"\n", b"")

    out = tmp_path / "export"
    export_git(repo, out, all_refs=True)
    repo.close()
    git = git_exe()
    objects = subprocess.run(
        [git, "cat-file", "--batch-all-objects", "--batch"],
        cwd=out, env=scrubbed_git_env(tmp_path), capture_output=True, check=True,
    ).stdout
    assert len(objects) > 1000 and b"[REDACTED:SENTINEL]" in objects  # the logs went along
    assert SENTINEL not in objects
    for path in out.rglob("*"):
        if path.is_file():
            assert SENTINEL not in path.read_bytes(), path

    from tests.conftest import PASSPHRASE

    with Repo.open(repo.root, passphrase=PASSPHRASE) as again:  # type: ignore[arg-type]
        seen = 0
        for info in again.iter_objects():
            assert SENTINEL not in again.read_raw(info.oid), info.oid
            seen += 1
        assert seen > 10
        with EventLog.for_repo(again) as log:
            events = list(log.events())
        assert len(events) > 10
        for event in events:
            assert SENTINEL not in event.canonical_bytes(), event.event_type
        assert any(b"[REDACTED:SENTINEL]" in e.payload_bytes for e in events)  # log chunks
        key, steve_dir = again.key, again.steve_dir
        assert key is not None and steve_dir is not None
        # the vault's own table holds the value: that is the one place it may be
        assert any(v == SENTINEL for v in rows(steve_dir / "steve.db", key))
        for db, skip in (("steve.db", frozenset({"secrets"})), ("events.db", frozenset())):
            for value in rows(steve_dir / db, key, skip):
                assert SENTINEL not in value, db
            for file in steve_dir.glob(db + "*"):  # and no clear text in the files
                assert SENTINEL not in file.read_bytes()


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "README").write_text("a source tree\n")
    return src


def test_rotating_a_secret_reruns_the_step_and_the_key_holds_no_value(
    repo: Repo, engine: Engine, busybox_image: ImageRecord, tmp_path: Path
) -> None:
    vault.set_secret(repo, "SENTINEL", SENTINEL)
    src = repo.write_tree(_source(tmp_path))
    draft = plan_draft(
        [
            node(
                "use",
                command=["sh", "-c", 'test -n "$SENTINEL" && mkdir out && echo ok > out/f'],
                inputs=[pinned("src", src)],
                outputs=["out"],
                image=busybox_image.id,
                secrets=["SENTINEL"],
            )
        ],
        grants=[{"node": "use", "capability": "secrets", "reason": "rotation test"}],
    )
    run_with_plan(repo, draft)
    runner = DockerRunner(engine)
    first = build(repo, runner).outcomes[0]
    assert first.status.value == "built", first.detail
    assert build(repo, runner).outcomes[0].status.value == "cached"
    assert first.receipt is not None
    assert replay(repo, runner, first.receipt).verdict == "match"  # the same value again
    vault.set_secret(repo, "SENTINEL", SENTINEL + b"-rotated")
    with pytest.raises(InvalidInput, match="rotated"):  # a replay needs the same value
        replay(repo, runner, first.receipt)
    third = build(repo, runner).outcomes[0]
    assert third.status.value == "built"  # version 2: a new action key
    assert third.action_key != first.action_key
    receipt = read_receipt(repo, third.receipt)  # type: ignore[arg-type]
    assert isinstance(receipt, BuildReceipt) and receipt.secrets == {"SENTINEL": 2}


def test_a_plan_without_the_grant_is_refused(repo: Repo, tmp_path: Path) -> None:
    from steve.errors import ManifestInvalid

    src = repo.write_tree(_source(tmp_path))
    draft = secret_plan("sha256:" + "ab" * 32, src, grant=False)
    with pytest.raises(ManifestInvalid) as err:  # at freeze
        run_with_plan(repo, draft)
    assert "grant_required" in str(err.value.problems)
    plan = PlanManifest.model_validate(draft)  # past freeze: the runtime refuses too
    with pytest.raises(SecretNotGranted) as refused:
        policy_for(plan, plan.nodes[0])
    assert refused.value.code == "STEVE-SECRET-005" and refused.value.exit_code == 12
