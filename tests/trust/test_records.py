"""Signed records, multi-signature entries and the keyring's rotation chain."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import MalformedObject
from steve.objects.oid import ObjectId
from steve.trust.keys import SigningKey
from steve.trust.records import (
    Keyring,
    RecordKind,
    SupersessionType,
    decode_record,
    image_record,
    make_record,
    rotation_of,
    rotation_record,
    sign_value,
    signing_input,
    supersession_of,
    supersession_record,
)

A, B, C = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
IMAGE = "sha256:" + "ab" * 32


def test_what_is_signed_leaves_the_signatures_out_and_names_the_purpose() -> None:
    value = {"x": 1, "signatures": [{"key": b"k", "sig": b"s"}]}
    assert signing_input("tag", value) == signing_input("tag", {"x": 1})
    assert signing_input("tag", value) != signing_input("image", value)


def test_a_record_signed_by_several_keys_round_trips_and_verifies() -> None:
    record = image_record(IMAGE, 100, [B, A])
    data = record.encode()
    back = decode_record(data)
    assert back == record and back.encode() == data
    assert [e.key for e in back.signatures] == sorted([A.public_key, B.public_key])
    ring = Keyring({A.public_key, B.public_key})
    verdict = back.judge(ring, required=[A.public_key, B.public_key])
    assert verdict.ok, verdict.problems()
    assert not back.judge(ring, required=[C.public_key]).ok  # C did not sign
    assert not back.judge(Keyring({C.public_key})).ok  # nobody trusted signed
    cosigned = back.cosigned([C])
    assert len(cosigned.signatures) == 3 and cosigned.judge(Keyring({C.public_key})).ok


@given(st.data())
def test_changing_any_byte_of_a_signed_record_is_caught(data: st.DataObject) -> None:
    record = image_record(IMAGE, 100, [A, B])
    raw = bytearray(record.encode())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        changed = decode_record(bytes(raw))
    except (MalformedObject, ValueError):
        return  # no longer a record at all
    both = Keyring({A.public_key, B.public_key})
    verdict = changed.judge(both, required=[A.public_key, B.public_key])
    assert record.judge(both, required=[A.public_key, B.public_key]).ok
    assert changed == record or not verdict.ok


def test_rotation_needs_both_signatures() -> None:
    record = rotation_record(A, B, 50, "scheduled")
    assert rotation_of(record).new == B.public_key
    forged = make_record(
        RecordKind.KEY_ROTATION,
        50,
        {"old": A.public_key, "new": C.public_key, "reason": "stolen"},
        [C],
    )
    with pytest.raises(ValueError, match="both"):
        rotation_of(forged)


def test_the_keyring_follows_the_rotation_chain_both_ways() -> None:
    ring = Keyring({A.public_key})
    ring.add_rotation(rotation_record(A, B, 50, "one"))
    ring.add_rotation(rotation_record(B, C, 80, "two"))
    assert ring.accepts(A.public_key, 50)[0]
    assert not ring.accepts(A.public_key, 51)[0]  # A retired at 50
    assert ring.accepts(B.public_key, 80)[0] and not ring.accepts(B.public_key, 81)[0]
    assert ring.accepts(C.public_key, 10_000)[0]
    # pinned to the newest key: the old signatures still count, up to each rotation
    newest = Keyring({C.public_key}, list(ring.rotations))
    assert newest.accepts(A.public_key, 10)[0] and not newest.accepts(A.public_key, 60)[0]
    old_sig = image_record(IMAGE, 10, [A])
    late_sig = image_record(IMAGE, 60, [A])
    assert old_sig.judge(newest).ok and not late_sig.judge(newest).ok
    stranger = SigningKey.generate()
    assert not newest.accepts(stranger.public_key, 1)[0]


def test_sign_value_gives_one_entry_per_key_sorted() -> None:
    entries = sign_value("x", {"a": 1}, [B, A, B])
    assert [e.key for e in entries] == sorted({A.public_key, B.public_key})


def test_a_supersession_record_states_what_replaces_what_and_why() -> None:
    old, new = ObjectId(b"\1" * 32), ObjectId(b"\2" * 32)
    record = supersession_record(
        old,
        new,
        epoch=1,
        kind=SupersessionType.CORRECTION,
        reason="typo",
        previous=None,
        time=5,
        keys=[A, B],
    )
    s = supersession_of(decode_record(record.encode()))
    assert (s.supersedes, s.by, s.epoch, s.type, s.reason) == (
        old,
        new,
        1,
        SupersessionType.CORRECTION,
        "typo",
    )
    with pytest.raises(ValueError):
        supersession_of(image_record(IMAGE, 1, [A]))
