"""Image trust: `steve image build` signs the image it made (and records its SBOM); a
run in a repository that pins a key refuses an image whose signature is missing or
wrong, unless the plan grants `unsigned_image` with a reason."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from steve.errors import ImageSignatureInvalid, ImageUnsigned
from steve.exec import DockerRunner, Engine, ImageRecord
from steve.porcelain.attest import image_sbom_ref
from steve.porcelain.build import build
from steve.porcelain.records import read_receipt
from steve.porcelain.trust import IMAGES_PREFIX, image_verdict, keyring, sign_image
from steve.repo import Repo
from steve.trust.records import image_record
from tests.docker_fixtures import BUSYBOX, DOCKERFILE
from tests.stages.fakes import FakeRunner
from tests.stages.helpers import IMAGE, node, plan_draft, run_with_plan
from tests.trust.conftest import Signer, Steve

GRANT = {"node": "n", "capability": "unsigned_image", "reason": "a throwaway test image"}


def one_node(image: str = IMAGE, **extra: object) -> dict[str, object]:
    return plan_draft([node("n", image=image, outputs=["o"])], **extra)


def test_an_unsigned_or_wrongly_signed_image_is_refused(pinned_repo: Repo, signer: Signer) -> None:
    repo = pinned_repo
    run_with_plan(repo, one_node())
    runner = FakeRunner()
    with pytest.raises(ImageUnsigned) as unsigned:
        build(repo, runner)
    assert unsigned.value.exit_code == 12 and runner.calls == []
    # signed, but by a key the repository does not trust
    sign_image(repo, IMAGE, [signer.co], now=10)
    with pytest.raises(ImageSignatureInvalid, match="trusted"):
        build(repo, runner)
    # a record whose signature was changed
    record = image_record(IMAGE, 10, [signer.key])
    entry = record.signatures[0]
    broken = type(record)(
        record.kind,
        record.time,
        record.body,
        (type(entry)(entry.key, bytes(64)),),
    )
    ref = IMAGES_PREFIX + IMAGE.removeprefix("sha256:")
    repo.update_ref(ref, repo.write_blob(broken.encode()))
    with pytest.raises(ImageSignatureInvalid, match="does not verify"):
        build(repo, runner)
    # a record that signs another image
    other = "sha256:" + "cd" * 32
    repo.update_ref(ref, repo.write_blob(image_record(other, 10, [signer.key]).encode()))
    with pytest.raises(ImageSignatureInvalid, match="does not sign this image"):
        build(repo, runner)
    assert runner.calls == []  # nothing ran, nothing moved
    # signed by the pinned key: runs
    repo.delete_ref(ref)
    sign_image(repo, IMAGE, [signer.key], now=10)
    verdict = image_verdict(repo, IMAGE, keyring(repo))
    assert verdict is not None and verdict.ok
    assert build(repo, runner).ok


def test_a_grant_with_a_reason_allows_an_unsigned_image(pinned_repo: Repo) -> None:
    run_with_plan(pinned_repo, one_node(grants=[GRANT]))
    report = build(pinned_repo, FakeRunner())
    assert report.ok
    receipt = report.outcomes[0].receipt
    assert receipt is not None
    body = read_receipt(pinned_repo, receipt)
    # the receipt says the image ran unsigned, on which grant, and why
    assert [g.capability for g in body.grants] == ["unsigned_image"]
    assert any(
        d.rule == "grant:unsigned_image" and d.detail == GRANT["reason"]
        for d in body.policy_decisions
    )


def test_a_signed_image_does_not_use_the_grant(pinned_repo: Repo, signer: Signer) -> None:
    sign_image(pinned_repo, IMAGE, [signer.key], now=1)
    run_with_plan(pinned_repo, one_node(grants=[GRANT]))
    report = build(pinned_repo, FakeRunner())
    receipt = report.outcomes[0].receipt
    assert receipt is not None and read_receipt(pinned_repo, receipt).grants == []


def test_without_a_pinned_key_there_is_nothing_to_check_against(repo: Repo) -> None:
    """The documented default: a repository that pins no key has no trust root."""
    run_with_plan(repo, one_node())
    assert build(repo, FakeRunner()).ok


def test_image_build_signs_the_image_and_records_its_sbom(
    pinned_repo: Repo,
    repo_path: Path,
    signer: Signer,
    steve: Steve,
    engine: Engine,
    busybox_image: ImageRecord,
    tmp_path: Path,
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy2(BUSYBOX, ctx / "busybox")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    pinned_repo.close()
    built = steve("image", "build", str(ctx))
    assert built.exit_code == 0, built.stderr
    image = built.stdout.strip()
    assert image == busybox_image.id  # the engine's build cache: the same image
    assert f"signed image {image}" in built.stderr
    repo = Repo.open(repo_path, passphrase="pw")
    try:
        verdict = image_verdict(repo, image, keyring(repo))
        assert verdict is not None and verdict.ok
        sbom_ref = repo.refs.resolve(image_sbom_ref(image))
        assert sbom_ref is not None and sbom_ref.target is not None
        bom = json.loads(repo.read_blob(sbom_ref.target))
        root = bom["metadata"]["component"]
        assert {"alg": "SHA-256", "content": image.removeprefix("sha256:")} in root["hashes"]
        assert {"name": "steve:image-base", "value": "scratch"} in root["properties"]
        files = {c["name"]: c for c in bom["components"] if c["type"] == "file"}
        want = hashlib.sha256(BUSYBOX.read_bytes()).hexdigest()
        assert {"alg": "SHA-256", "content": want} in files["busybox"]["hashes"]
        # the signed image runs in a real container
        run_with_plan(
            repo,
            plan_draft(
                [node("n", image=image, command=["sh", "-c", "echo hi > o"], outputs=["o"])]
            ),
        )
        assert build(repo, DockerRunner(engine)).ok
    finally:
        repo.close()
    # without a usable identity the build still succeeds, with a warning
    unsigned = steve("image", "build", str(ctx), env={"STEVE_SIGNING_PASSPHRASE": ""})
    assert unsigned.exit_code == 0 and "image not signed" in unsigned.stderr


def test_signing_again_cosigns_an_intact_record_and_replaces_a_broken_one(
    pinned_repo: Repo, signer: Signer
) -> None:
    repo = pinned_repo
    sign_image(repo, IMAGE, [signer.co], now=5)
    sign_image(repo, IMAGE, [signer.key], now=6)
    verdict = image_verdict(repo, IMAGE, keyring(repo))
    assert verdict is not None and verdict.ok and len(verdict.checks) == 2
    ref = IMAGES_PREFIX + IMAGE.removeprefix("sha256:")
    repo.update_ref(ref, repo.write_blob(b"not a record"))
    assert not image_verdict(repo, IMAGE, keyring(repo)).ok  # type: ignore[union-attr]
    sign_image(repo, IMAGE, [signer.key], now=7)
    verdict = image_verdict(repo, IMAGE, keyring(repo))
    assert verdict is not None and verdict.ok and len(verdict.checks) == 1
