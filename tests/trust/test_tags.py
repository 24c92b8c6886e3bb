"""Signed tags: made with -s (and co-signers), verified, rejected after tampering,
exported to git and checked there, covered by `steve verify`."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import MalformedObject, SignatureInvalid, TagNotSigned
from steve.objects import cbor
from steve.objects.model import (
    Blob,
    ObjectType,
    Person,
    Tag,
    decode_object,
    encode_object,
    object_from_value,
)
from steve.objects.oid import ObjectId
from steve.objects.signatures import SignatureEntry
from steve.porcelain.trust import keyring, verify_tag
from steve.porcelain.verify import VerifyKind, verify
from steve.repo import Repo
from steve.trust.keys import SigningKey, verify_signature
from steve.trust.records import sign_bytes
from tests.trust.conftest import Signer, Steve


def test_a_signed_tag_verifies_and_a_one_byte_change_does_not(
    pinned_repo: Repo, signer: Signer
) -> None:
    repo = pinned_repo
    blob = repo.write(Blob(b"release\n"))
    tid = repo.create_tag(
        "v1", blob, message="release 1", signers=[signer.key, signer.co], now=100, tz=0
    )
    tag = repo.read_object(tid)
    assert isinstance(tag, Tag) and len(tag.signatures) == 2
    assert decode_object(repo.read_raw(tid)) == tag  # v2 round-trips strictly
    both = [signer.key.public_key, signer.co.public_key]
    result = verify_tag(repo, "v1", keyring(repo, both), required=both)
    assert result.verdict.ok and result.target == blob
    assert verify(repo, tid, keyring(repo)).ok

    # one byte of the message changed, signatures kept: a new object, refused
    forged = replace(tag, message="release 2")
    repo.update_ref("refs/tags/v1", repo.write(forged))
    with pytest.raises(SignatureInvalid):
        verify_tag(repo, "v1", keyring(repo))
    report = verify(repo, "v1", keyring(repo))
    assert [p.kind for p in report.problems] == [VerifyKind.SIGNATURE]

    # one bit of a signature flipped
    e = tag.signatures[0]
    flipped = SignatureEntry(e.key, bytes([e.sig[0] ^ 1]) + e.sig[1:])
    repo.update_ref(
        "refs/tags/v1", repo.write(replace(tag, signatures=(flipped, *tag.signatures[1:])))
    )
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_tag(repo, "v1", keyring(repo))
    assert not verify(repo, "v1").ok  # even with no trust root: a bad signature is bad


def test_unsigned_tags_and_untrusted_keys_are_refused(pinned_repo: Repo, signer: Signer) -> None:
    repo = pinned_repo
    blob = repo.write(Blob(b"x"))
    repo.create_tag("plain", blob, message="not signed", now=1, tz=0)
    with pytest.raises(TagNotSigned):
        verify_tag(repo, "plain", keyring(repo))
    repo.create_tag("co-only", blob, message="co", signers=[signer.co], now=1, tz=0)
    with pytest.raises(SignatureInvalid, match="trusted"):
        verify_tag(repo, "co-only", keyring(repo))
    # trusting the co-signer's key explicitly accepts it
    assert verify_tag(repo, "co-only", keyring(repo, [signer.co.public_key])).verdict.ok


def test_tag_s_and_verify_tag_on_the_command_line(
    pinned_repo: Repo, signer: Signer, steve: Steve, tmp_path: Path
) -> None:
    blob = pinned_repo.write(Blob(b"cli\n"))
    pinned_repo.close()
    made = steve("tag", "-s", "--identity", "co", "v1", blob.hex, "-m", "signed on the CLI")
    assert made.exit_code == 0, made.stderr
    checked = steve("verify-tag", "v1", "--key", str(signer.pem(tmp_path, signer.co)))
    assert checked.exit_code == 0, checked.stderr
    assert f"good signature by {signer.co.public_key.hex()}" in checked.stdout
    pinned = steve("verify-tag", "v1")  # the pinned key by default
    assert f"good signature by {signer.key.public_key.hex()}" in pinned.stdout
    assert steve("verify", "v1").exit_code == 0
    shown = steve("cat-file", "-p", "v1").stdout.splitlines()
    assert shown[-4] == "-----BEGIN STEVE SIGNATURES-----"
    assert f"ed25519 {signer.key.public_key.hex()}" in "\n".join(shown)
    no_msg = steve("tag", "-s", "v2", blob.hex)
    assert no_msg.exit_code == 2
    # a tag signed by nobody trusted: exit 9 with the code
    stranger = tmp_path / "stranger.pem"
    from steve.trust.keys import public_pem

    stranger.write_text(public_pem(SigningKey.generate().public_key))
    refused = steve("verify-tag", "v1", "--key", str(stranger))
    assert refused.exit_code == 9 and refused.error_code() == "[STEVE-SIGN-011]"


def test_signed_tags_export_to_git_and_verify_there(
    pinned_repo: Repo, signer: Signer, steve: Steve, tmp_path: Path
) -> None:
    blob = pinned_repo.write(Blob(b"to git\n"))
    pinned_repo.create_tag("v1", blob, message="signed", signers=[signer.key], now=5, tz=0)
    pinned_repo.close()
    mirror = tmp_path / "mirror.git"
    assert steve("export-git", str(mirror), "--all", "--bare").exit_code == 0
    checked = steve("verify-git", str(mirror))
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    shown = subprocess.run(
        ["git", "-C", str(mirror), "cat-file", "-p", "v1"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C"},
    ).stdout
    assert f"ed25519 {signer.key.public_key.hex()} " in shown


KEYS = [SigningKey.generate() for _ in range(3)]


@given(
    message=st.text(max_size=200),
    signers=st.lists(st.sampled_from(KEYS), min_size=1, max_size=3),
    time=st.integers(0, 253_402_300_799),
)
def test_signed_tags_round_trip_strictly_and_only_canonical_forms_decode(
    message: str, signers: list[SigningKey], time: int
) -> None:
    target = ObjectId(b"\7" * 32)
    unsigned = Tag(target, ObjectType.BLOB, "v1", Person("a", "a@b"), time, 0, message)
    tag = replace(unsigned, signatures=sign_bytes(unsigned.signed_bytes(), signers))
    data = encode_object(tag)
    assert decode_object(data) == tag
    message_bytes = tag.signed_bytes()
    assert all(verify_signature(e.key, e.sig, message_bytes) for e in tag.signatures)
    value = cbor.decode(data)
    if len(tag.signatures) > 1:  # unsorted entries are not the canonical form
        with pytest.raises(MalformedObject):
            object_from_value({**value, "signatures": value["signatures"][::-1]})
    with pytest.raises(MalformedObject):
        object_from_value({**value, "signatures": []})
    with pytest.raises(MalformedObject):
        object_from_value({**value, "v": 1})  # v1 has no signatures field
