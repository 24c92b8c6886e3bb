"""SLSA provenance in DSSE: made by `steve attest`, verified offline by STEVE and by the
independent securesystemslib and in-toto libraries with only the public key, and
rejected by all of them after a one-byte change to the payload or a signature."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import blake3
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from hypothesis import given, settings
from hypothesis import strategies as st
from in_toto.models.metadata import Envelope as InTotoEnvelope
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from steve.errors import AttestationInvalid, AttestationMalformed, NotAttestable
from steve.objects.oid import ObjectId
from steve.porcelain.attest import (
    BUILD_TYPE_CERTIFICATE,
    BUILD_TYPE_STEP,
    PROVENANCE_TYPE,
    STATEMENT_TYPE,
    attest,
    verify_attestation,
)
from steve.porcelain.build import build
from steve.porcelain.testing import run_tests
from steve.porcelain.trust import ATTESTATIONS_PREFIX, keyring, sign_image
from steve.porcelain.verify import VerifyKind, verify
from steve.repo import Repo
from steve.trust.dsse import pae
from steve.trust.keys import SigningKey, public_pem
from tests.stages.fakes import FakeRunner
from tests.stages.helpers import IMAGE, chain_plan, run_with_plan
from tests.trust.conftest import Signer, Steve


def built(repo: Repo, key: SigningKey) -> tuple[ObjectId, ObjectId]:
    """(the last build receipt, the test certificate) of a built and tested chain plan
    (its image signed by ``key``, the pinned key: the repository refuses it otherwise)."""
    sign_image(repo, IMAGE, [key], now=1_700_000_000)
    src = repo.write_blob(b"source\n")
    run_with_plan(repo, chain_plan(src))
    runner = FakeRunner()
    report = build(repo, runner, clock=lambda: 1_700_000_100)
    assert report.ok
    receipt = report.outcomes[-1].receipt
    assert receipt is not None
    tested = run_tests(repo, runner, clock=lambda: 1_700_000_200)
    return receipt, tested.certificate


def sslib_key(public_key: bytes) -> SSlibKey:
    """The verifier's key, made from the PEM alone (what a third party is given)."""
    return SSlibKey.from_crypto(load_pem_public_key(public_pem(public_key).encode()))


def flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]


def test_a_receipt_attestation_is_slsa_provenance_in_dsse(
    pinned_repo: Repo, signer: Signer
) -> None:
    repo = pinned_repo
    receipt, _ = built(repo, signer.key)
    result = attest(repo, receipt, [signer.key])
    envelope = json.loads(result.data)
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == PROVENANCE_TYPE
    # the receipt itself is a subject: its STEVE id is the BLAKE3 of its bytes
    first = statement["subject"][0]
    raw = repo.read_raw(receipt)
    assert first["digest"] == {"sha256": hashlib.sha256(raw).hexdigest(), "blake3": receipt.hex}
    # every output file, both digests of its content
    for subject in statement["subject"][1:]:
        assert set(subject["digest"]) == {"sha256", "blake3"}
    assert len(statement["subject"]) >= 2
    definition = statement["predicate"]["buildDefinition"]
    assert definition["buildType"] == BUILD_TYPE_STEP
    assert definition["externalParameters"]["image"] == IMAGE
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert deps["image"]["digest"] == {"sha256": IMAGE.removeprefix("sha256:")}
    # the SBOM is stored and referenced by digest
    sbom = repo.read_blob(result.sbom)
    assert deps["sbom"]["digest"] == {
        "sha256": hashlib.sha256(sbom).hexdigest(),
        "blake3": blake3.blake3(sbom).hexdigest(),
    }
    bom = json.loads(sbom)
    assert bom["bomFormat"] == "CycloneDX"
    files = {c["name"]: c for c in bom["components"] if c["type"] == "file"}
    for subject in statement["subject"][1:]:
        hashes = {h["alg"]: h["content"] for h in files[subject["name"]]["hashes"]}
        assert hashes == {
            "SHA-256": subject["digest"]["sha256"],
            "BLAKE3": subject["digest"]["blake3"],
        }
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] and run["metadata"]["invocationId"] == f"steve:{receipt.hex}"
    # stored, linked to the receipt, reproducible
    ref = repo.refs.resolve(ATTESTATIONS_PREFIX + receipt.hex)
    assert ref is not None and ref.target == result.envelope
    assert attest(repo, receipt, [signer.key]).envelope == result.envelope
    assert verify(repo, receipt, keyring(repo)).ok


def test_a_certificate_attests_its_whole_artifact_set(pinned_repo: Repo, signer: Signer) -> None:
    repo = pinned_repo
    _, certificate = built(repo, signer.key)
    result = attest(repo, certificate, [signer.key, signer.co])
    checked = verify_attestation(result.data, [signer.key.public_key, signer.co.public_key])
    statement = checked.statement
    assert statement["predicate"]["buildDefinition"]["buildType"] == BUILD_TYPE_CERTIFICATE
    names = [s["name"] for s in statement["subject"]]
    assert names[0] == f"steve:test_certificate:{certificate.hex}"
    assert any(n.startswith("gen/") for n in names) and any(n.startswith("check/") for n in names)
    with pytest.raises(NotAttestable):
        attest(repo, repo.write_blob(b"not a receipt"), [signer.key])


def test_securesystemslib_and_in_toto_verify_it_with_the_public_key_only(
    pinned_repo: Repo, signer: Signer
) -> None:
    receipt, _ = built(pinned_repo, signer.key)
    data = attest(pinned_repo, receipt, [signer.key]).data
    key = sslib_key(signer.key.public_key)
    doc = json.loads(data)
    # from_dict rewrites the dict it is given: each library gets its own copy
    accepted = SslibEnvelope.from_dict(json.loads(data)).verify([key], 1)
    assert list(accepted) == [key.keyid]
    in_toto = InTotoEnvelope.from_dict(json.loads(data))
    assert in_toto.verify([key], 1) and in_toto.pae() == pae(
        doc["payloadType"], base64.b64decode(doc["payload"])
    )
    # another key does not verify it
    other = sslib_key(SigningKey.generate().public_key)
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(json.loads(data)).verify([other], 1)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_one_changed_byte_of_payload_or_signature_is_rejected_by_every_verifier(
    data: st.DataObject,
) -> None:
    key = SigningKey.generate()
    from steve.trust.dsse import IN_TOTO_PAYLOAD_TYPE, sign_envelope

    payload = json.dumps({"_type": STATEMENT_TYPE, "subject": [], "predicateType": "x"}).encode()
    good = json.loads(sign_envelope(payload, IN_TOTO_PAYLOAD_TYPE, [key]).to_json())
    field = data.draw(st.sampled_from(["payload", "sig"]))
    if field == "payload":
        raw = base64.b64decode(good["payload"])
        good["payload"] = base64.b64encode(flip(raw, data.draw(st.integers(0, len(raw) - 1))))
        good["payload"] = good["payload"].decode()
    else:
        raw = base64.b64decode(good["signatures"][0]["sig"])
        i = data.draw(st.integers(0, len(raw) - 1))
        good["signatures"][0]["sig"] = base64.b64encode(flip(raw, i)).decode()
    tampered = json.dumps(good).encode()
    with pytest.raises(AttestationInvalid):
        verify_attestation(tampered, [key.public_key])
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(json.loads(tampered)).verify([sslib_key(key.public_key)], 1)
    with pytest.raises(VerificationError):
        InTotoEnvelope.from_dict(json.loads(tampered)).verify([sslib_key(key.public_key)], 1)


def test_attest_and_verify_attestation_on_the_command_line(
    pinned_repo: Repo, signer: Signer, steve: Steve, tmp_path: Path
) -> None:
    receipt, _ = built(pinned_repo, signer.key)
    pinned_repo.close()
    out = tmp_path / "receipt.intoto.json"
    made = steve("attest", receipt.hex, "-o", str(out), "--json")
    assert made.exit_code == 0, made.stderr
    info = json.loads(made.stdout)
    assert info["subject"] == receipt.hex and info["kind"] == "build_receipt"
    pem = tmp_path / "pub.pem"
    shown = steve("key", "show", "--public")
    pem.write_text(shown.stdout)
    checked = steve("verify-attestation", str(out), "--key", str(pem))
    assert checked.exit_code == 0, checked.stderr
    assert checked.stdout.startswith(f"verified: {PROVENANCE_TYPE}")
    # one byte of the payload changed: exit 9
    doc = json.loads(out.read_bytes())
    payload = base64.b64decode(doc["payload"])
    doc["payload"] = base64.b64encode(flip(payload, len(payload) // 2)).decode()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    refused = steve("verify-attestation", str(bad), "--key", str(pem))
    assert refused.exit_code == 9 and refused.error_code() == "[STEVE-ATTEST-001]"
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[]")
    assert steve("verify-attestation", str(garbage), "--key", str(pem)).exit_code == 6
    assert steve("verify-attestation", str(out)).exit_code == 2  # --key is required
    assert steve("verify", receipt.hex).exit_code == 0


def test_steve_verify_flags_an_attestation_no_trusted_key_signed(
    pinned_repo: Repo, signer: Signer, steve: Steve
) -> None:
    receipt, _ = built(pinned_repo, signer.key)
    attest(pinned_repo, receipt, [signer.co])  # the co-signer only: not the pinned key
    report = verify(pinned_repo, receipt, keyring(pinned_repo))
    assert [p.kind for p in report.problems] == [VerifyKind.SIGNATURE]
    pinned_repo.close()
    cli = steve("verify", receipt.hex)  # the command builds the keyring of the pinned key
    assert cli.exit_code == 9 and "bad-signature" in cli.stdout, cli.stdout + cli.stderr
    with pytest.raises(AttestationMalformed):
        verify_attestation(b"{}", [signer.key.public_key])


def test_an_artifact_missing_from_the_store_fails_the_sbom(pinned_repo: Repo) -> None:
    from steve.errors import SbomFailed
    from steve.porcelain.attest import artifact_files

    with pytest.raises(SbomFailed):
        artifact_files(pinned_repo, {"out": "ab" * 32}, "n/")
