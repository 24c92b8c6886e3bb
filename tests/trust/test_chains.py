"""Supersession chains (epochs, multi-signature) and key rotation: a new key signed
by the old one, old signatures still verify, later ones by the old key do not."""

from __future__ import annotations

from pathlib import Path

import pytest

from steve.errors import SignatureInvalid, SupersessionInvalid
from steve.objects.model import Blob
from steve.porcelain.trust import (
    SUPERSESSIONS_PREFIX,
    keyring,
    record_rotation,
    supersede,
    supersession_chain,
    verify_tag,
)
from steve.repo import Repo
from steve.trust.keys import SigningKey, read_identity
from steve.trust.records import SupersessionType, rotation_record, supersession_record
from tests.trust.conftest import Signer, Steve


def test_an_amendment_chain_is_explicit_and_verified(pinned_repo: Repo, signer: Signer) -> None:
    repo = pinned_repo
    v1, v2, v3 = (repo.write(Blob(f"version {i}\n".encode())) for i in (1, 2, 3))
    keys = [signer.key, signer.co]
    supersede(repo, v1, v2, kind=SupersessionType.CORRECTION, reason="typo", keys=keys, now=1)
    supersede(repo, v2, v3, kind=SupersessionType.AMENDMENT, reason="scope", keys=keys, now=2)
    chain = supersession_chain(repo, v1, keyring(repo))
    assert [(c.supersession.epoch, c.supersession.by, c.supersession.type) for c in chain] == [
        (1, v2, SupersessionType.CORRECTION),
        (2, v3, SupersessionType.AMENDMENT),
    ]
    assert chain[1].supersession.previous == chain[0].record
    assert {c.key for c in chain[0].verdict.checks} == {signer.key.public_key, signer.co.public_key}
    with pytest.raises(SupersessionInvalid, match="already superseded"):
        supersede(repo, v1, v3, kind=SupersessionType.AMENDMENT, reason="x", keys=keys, now=3)
    # a link signed only by an untrusted key breaks the chain
    v4 = repo.write(Blob(b"version 4\n"))
    supersede(repo, v3, v4, kind=SupersessionType.RETRACTION, reason="no", keys=[signer.co], now=4)
    with pytest.raises(SupersessionInvalid, match="trusted"):
        supersession_chain(repo, v1, keyring(repo))


def test_a_forged_epoch_is_refused(pinned_repo: Repo, signer: Signer) -> None:
    repo = pinned_repo
    a, b, c = (repo.write(Blob(bytes([i]))) for i in range(3))
    first = supersede(
        repo, a, b, kind=SupersessionType.AMENDMENT, reason="1", keys=[signer.key], now=1
    )
    wrong = supersession_record(
        b,
        c,
        epoch=5,
        kind=SupersessionType.AMENDMENT,
        reason="skip",
        previous=first,
        time=2,
        keys=[signer.key],
    )
    repo.update_ref(SUPERSESSIONS_PREFIX + b.hex, repo.write_blob(wrong.encode()), None)
    with pytest.raises(SupersessionInvalid, match="epoch 5"):
        supersession_chain(repo, a, keyring(repo))


def test_old_signatures_still_verify_after_a_rotation(pinned_repo: Repo, signer: Signer) -> None:
    repo = pinned_repo
    blob = repo.write(Blob(b"x"))
    repo.create_tag("before", blob, message="old key", signers=[signer.key], now=100, tz=0)
    new = SigningKey.generate()
    record_rotation(repo, rotation_record(signer.key, new, 200, "scheduled"))
    # pinned to the new key, the chain is followed back to the old one
    ring = keyring(repo, [new.public_key])
    assert verify_tag(repo, "before", ring).verdict.ok
    repo.create_tag("after", blob, message="new key", signers=[new], now=300, tz=0)
    assert verify_tag(repo, "after", keyring(repo)).verdict.ok  # pinned old -> forward
    # the retired key signing after its rotation is not accepted
    repo.create_tag("late", blob, message="old key, late", signers=[signer.key], now=300, tz=0)
    with pytest.raises(SignatureInvalid, match="retired"):
        verify_tag(repo, "late", ring)
    # a rotation the old key did not sign vouches for nothing
    forged = rotation_record(SigningKey.generate(), SigningKey.generate(), 1, "x")
    with pytest.raises(ValueError):
        record_rotation(
            repo, type(forged)(forged.kind, forged.time, forged.body, forged.signatures[:1])
        )


def test_key_rotate_on_the_command_line(
    pinned_repo: Repo, signer: Signer, steve: Steve, tmp_path: Path
) -> None:
    blob = pinned_repo.write(Blob(b"y"))
    pinned_repo.close()
    env = {"SOURCE_DATE_EPOCH": "1000"}
    assert steve("tag", "-s", "v1", blob.hex, "-m", "before", env=env).exit_code == 0
    old_pem = steve("key", "show", "--public").stdout
    rotated = steve("key", "rotate", "--reason", "test", env={"SOURCE_DATE_EPOCH": "2000"})
    assert rotated.exit_code == 0, rotated.stderr
    new_hex = rotated.stdout.strip()
    assert read_identity(signer.directory).public_key.hex() == new_hex
    assert (signer.directory / "retired" / signer.key.public_key.hex()).is_file()
    assert "re-pinned" in rotated.stderr
    assert steve("verify-tag", "v1").exit_code == 0  # made before: still verifies
    assert steve("tag", "-s", "v2", blob.hex, "-m", "after").exit_code == 0
    assert steve("verify-tag", "v2").exit_code == 0
    old = tmp_path / "old.pem"
    old.write_text(old_pem)
    assert steve("verify-tag", "v2", "--key", str(old)).exit_code == 0  # followed forward
    events = steve("events", "verify")
    assert events.exit_code == 0, events.stderr
    listed = steve("key", "list").stdout.split()
    assert listed[:2] == ["-", new_hex] and "co" in listed


def test_another_repository_learns_the_rotation_from_the_identity(
    pinned_repo: Repo, signer: Signer, steve: Steve, tmp_path: Path
) -> None:
    """`steve key rotate` ran elsewhere; this repository still pins the old key."""
    import os

    from steve.trust.keys import load_signing_key, replace_identity

    blob = pinned_repo.write(Blob(b"z"))
    pinned_repo.create_tag("old", blob, message="old key", signers=[signer.key], now=10, tz=0)
    pinned_repo.close()
    new = SigningKey.generate()
    record = rotation_record(signer.key, new, 20, "elsewhere")
    rotations = signer.directory / "rotations"
    rotations.mkdir(mode=0o700)
    (rotations / f"{signer.key.public_key.hex()}.cbor.hex").write_text(record.encode().hex())
    old_key = load_signing_key(signer.directory, os.environ["STEVE_SIGNING_PASSPHRASE"].encode())
    replace_identity(signer.directory, old_key, b"sign-pw", staged=new)
    done = steve("key", "record-rotations")
    assert done.exit_code == 0, done.stderr
    assert f"re-pinned {new.public_key.hex()}" in done.stderr
    assert steve("verify-tag", "old").exit_code == 0  # made before the rotation
    again = steve("key", "record-rotations")  # idempotent
    assert again.exit_code == 0 and "re-pinned" not in again.stderr
