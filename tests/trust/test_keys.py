"""Signing identities: named co-signers, PEM export, key ids, rotation on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.signer import SSlibKey

from steve.errors import IdentityExists, IdentityInsecure, InvalidInput, WrongSigningPassphrase
from steve.store.kdf import KdfParams
from steve.trust.keys import (
    RETIRED_DIR,
    create_identity,
    keyid,
    list_identities,
    load_signing_key,
    parse_public_pem,
    public_pem,
    read_identity,
    replace_identity,
)


def fast() -> KdfParams:
    return KdfParams(salt=os.urandom(16), memory_kib=256, iterations=1, parallelism=1)


def test_named_identities_live_beside_the_default(tmp_path: Path) -> None:
    default = create_identity(tmp_path, b"one", kdf=fast())
    co = create_identity(tmp_path, b"two", name="release", kdf=fast())
    assert default.public_key != co.public_key
    assert [(i.name, i.public_key) for i in list_identities(tmp_path)] == [
        (None, default.public_key),
        ("release", co.public_key),
    ]
    assert load_signing_key(tmp_path, b"two", "release").public_key == co.public_key
    with pytest.raises(WrongSigningPassphrase):
        load_signing_key(tmp_path, b"one", "release")
    with pytest.raises(IdentityExists):
        create_identity(tmp_path, b"x", name="release", kdf=fast())
    with pytest.raises(InvalidInput):
        create_identity(tmp_path, b"x", name="../evil", kdf=fast())
    co.path.chmod(0o644)
    with pytest.raises(IdentityInsecure):
        read_identity(tmp_path, "release")


def test_the_public_key_exports_as_pem_that_other_tools_read(tmp_path: Path) -> None:
    info = create_identity(tmp_path, b"pw", kdf=fast())
    pem = public_pem(info.public_key)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    loaded = load_pem_public_key(pem.encode())
    assert isinstance(loaded, Ed25519PublicKey)
    assert parse_public_pem(pem) == info.public_key
    assert parse_public_pem(info.public_key.hex()) == info.public_key
    # securesystemslib computes the same key id from the PEM alone
    assert SSlibKey.from_crypto(loaded).keyid == keyid(info.public_key)
    with pytest.raises(ValueError):
        parse_public_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_replacing_the_key_keeps_the_old_one_retired(tmp_path: Path) -> None:
    create_identity(tmp_path, b"pw", kdf=fast())
    old = load_signing_key(tmp_path, b"pw")
    new = replace_identity(tmp_path, old, b"pw", kdf=fast())
    assert read_identity(tmp_path).public_key == new.public_key != old.public_key
    retired = tmp_path / RETIRED_DIR / old.public_key.hex()
    assert retired.stat().st_mode & 0o077 == 0
    assert load_signing_key(tmp_path, b"pw").public_key == new.public_key
