"""Signing identities: Ed25519 keys that live with the *user*, never in a repository.

    >>> info = create_identity(Path("~/.config/steve"), b"signing passphrase")
    >>> key = load_signing_key(Path("~/.config/steve"), b"signing passphrase")
    >>> co = create_identity(Path("~/.config/steve"), b"other", name="release")

An identity directory (the CLI: ``STEVE_IDENTITY_DIR``, else
``$XDG_CONFIG_HOME/steve``) holds the *default* identity in ``signing-key``
and further named identities (for co-signing) in ``signing-key.<name>``.
Each file is JSON: the public key in clear and the private key encrypted with
a key derived from the identity's own passphrase by Argon2id
(ChaCha20-Poly1305, the public key as associated data).  Files are created
0600 in a 0700 directory and refused when group or others may read them.
Nothing here reads the environment or prompts: directory, name and
passphrase are parameters.

Everything STEVE signs (event checkpoints, tags, attestations, image
signatures, rotation and supersession records) is signed by one of these
keys; a repository holds only public keys, so the repository key alone
cannot produce a signature that verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import blake3
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_public_key,
)

from steve.errors import (
    IdentityDamaged,
    IdentityExists,
    IdentityInsecure,
    InvalidInput,
    NoSigningIdentity,
    WrongSigningPassphrase,
)
from steve.store.files import write_private
from steve.store.kdf import KdfParams, derive_key

KEY_FILE = "signing-key"
"""The file, inside the identity directory, that holds the default identity."""
RETIRED_DIR = "retired"
"""Inside the identity directory: the key files of identities rotated away from."""

_FORMAT = "steve-signing-key"
_AAD = b"steve signing key v1\x00"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_public_key(text: str) -> bytes:
    """A raw Ed25519 public key from 64 hex digits (ValueError otherwise)."""
    raw = bytes.fromhex(text.strip())
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
    Ed25519PublicKey.from_public_bytes(raw)
    return raw


def public_pem(public_key: bytes) -> str:
    """The PEM (SubjectPublicKeyInfo) form of a raw Ed25519 public key."""
    pem = Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def parse_public_pem(text: str | bytes) -> bytes:
    """The raw Ed25519 public key of a PEM SubjectPublicKeyInfo, or of 64 hex digits
    (ValueError for anything else, including keys of other algorithms)."""
    data = text.encode() if isinstance(text, str) else text
    if b"-----BEGIN" not in data:
        return parse_public_key(data.decode("ascii", "replace"))
    try:
        key = load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 key ({type(key).__name__})")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def events_key_id(public_key: bytes) -> bytes:
    """The id an event-log checkpoint records for the key that signed it:
    ``BLAKE3(b"steve-events-key" || public key)``."""
    digest: bytes = blake3.blake3(b"steve-events-key" + public_key).digest()
    return digest


def keyid(public_key: bytes) -> str:
    """The key id DSSE signatures carry: the SHA-256 of the canonical JSON of the key
    as securesystemslib describes an Ed25519 key (``keytype``, ``keyval``,
    ``scheme``), so ``SSlibKey.from_crypto`` computes the same id."""
    doc = {"keytype": "ed25519", "keyval": {"public": public_key.hex()}, "scheme": "ed25519"}
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class SigningKey:
    """An Ed25519 private key held in memory only while it is used."""

    __slots__ = ("_private", "public_key")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_key: bytes = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, raw: bytes) -> SigningKey:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @property
    def key_id(self) -> bytes:
        """The event log's id for the key (:func:`steve.events.signing.key_id_of`)."""
        return events_key_id(self.public_key)

    @property
    def keyid(self) -> str:
        """The DSSE / securesystemslib key id (:func:`keyid`)."""
        return keyid(self.public_key)

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self._private.sign(message)
        return signature

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key.hex()})"


@dataclass(frozen=True, slots=True)
class IdentityInfo:
    path: Path
    public_key: bytes
    name: str | None = None  # None: the default identity


def check_identity_name(name: str) -> str:
    """``name`` if it is a valid identity name (lowercase, digits, ``-``, ``_``)."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            "invalid identity name", f"{name[:80]!r} (lowercase letters, digits, - and _)"
        )
    return name


def key_path(directory: Path, name: str | None = None) -> Path:
    if name is None:
        return directory / KEY_FILE
    return directory / f"{KEY_FILE}.{check_identity_name(name)}"


def _sealed_record(key: SigningKey, raw: bytes, passphrase: bytes, kdf: KdfParams | None) -> str:
    params = kdf or KdfParams.fresh()
    nonce = os.urandom(12)
    sealed = ChaCha20Poly1305(derive_key(passphrase, params)).encrypt(
        nonce, raw, _AAD + key.public_key
    )
    record = {
        "format": _FORMAT,
        "v": 1,
        "public_key": key.public_key.hex(),
        "kdf": {
            "algorithm": "argon2id",
            "salt": params.salt.hex(),
            "memory_kib": params.memory_kib,
            "iterations": params.iterations,
            "parallelism": params.parallelism,
        },
        "cipher": "chacha20poly1305",
        "nonce": nonce.hex(),
        "ciphertext": sealed.hex(),
    }
    return json.dumps(record, indent=1, sort_keys=True) + "\n"


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)


def create_identity(
    directory: Path,
    passphrase: bytes,
    *,
    name: str | None = None,
    kdf: KdfParams | None = None,
) -> IdentityInfo:
    """Generate a signing key and store it encrypted under ``directory`` (created 0700),
    as the default identity or, with ``name``, a further one for co-signing.

    Raises IdentityExists when that identity already exists (never overwritten).
    """
    path = key_path(directory, name)
    _private_dir(directory)
    if path.exists():
        raise IdentityExists(str(path))
    private = Ed25519PrivateKey.generate()
    key = SigningKey(private)
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    # exclusive: fails if another process created one meanwhile
    try:
        write_private(path, _sealed_record(key, raw, passphrase, kdf), exclusive=True)
    except FileExistsError:
        raise IdentityExists(str(path)) from None
    return IdentityInfo(path, key.public_key, name)


def _read(path: Path) -> dict[str, object]:
    try:
        st = path.stat()
        text = path.read_bytes()
    except FileNotFoundError:
        raise NoSigningIdentity(f"{path} does not exist") from None
    except OSError as exc:
        raise IdentityDamaged(str(path), exc.strerror or str(exc)) from exc
    if st.st_mode & 0o077:
        raise IdentityInsecure(str(path), stat.filemode(st.st_mode))
    try:
        record = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IdentityDamaged(str(path), f"not JSON: {exc}") from exc
    if not isinstance(record, dict) or record.get("format") != _FORMAT or record.get("v") != 1:
        raise IdentityDamaged(str(path), "not a version 1 steve-signing-key file")
    return record


def read_identity(directory: Path, name: str | None = None) -> IdentityInfo:
    """The identity's public key (no passphrase needed).  NoSigningIdentity if absent."""
    path = key_path(directory, name)
    record = _read(path)
    try:
        return IdentityInfo(path, parse_public_key(str(record["public_key"])), name)
    except (KeyError, ValueError) as exc:
        raise IdentityDamaged(str(path), f"bad public_key: {exc}") from exc


def list_identities(directory: Path) -> list[IdentityInfo]:
    """The default identity (if any), then the named ones by name."""
    out: list[IdentityInfo] = []
    if key_path(directory).exists():
        out.append(read_identity(directory))
    if directory.is_dir():
        for path in sorted(directory.glob(f"{KEY_FILE}.*")):
            name = path.name[len(KEY_FILE) + 1 :]
            if _NAME.fullmatch(name):
                out.append(read_identity(directory, name))
    return out


def _unseal(path: Path, record: dict[str, object], passphrase: bytes) -> SigningKey:
    try:
        public = parse_public_key(str(record["public_key"]))
        kdf = record["kdf"]
        if not isinstance(kdf, dict) or kdf.get("algorithm") != "argon2id":
            raise ValueError("unknown KDF")
        if record.get("cipher") != "chacha20poly1305":
            raise ValueError("unknown cipher")
        params = KdfParams(
            salt=bytes.fromhex(str(kdf["salt"])),
            memory_kib=int(kdf["memory_kib"]),
            iterations=int(kdf["iterations"]),
            parallelism=int(kdf["parallelism"]),
        )
        params.validate()
        nonce = bytes.fromhex(str(record["nonce"]))
        sealed = bytes.fromhex(str(record["ciphertext"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise IdentityDamaged(str(path), f"missing or invalid field: {exc}") from exc
    except InvalidInput as exc:  # KDF parameters out of range
        raise IdentityDamaged(str(path), f"{exc.message}: {exc.detail}") from exc
    try:
        raw = ChaCha20Poly1305(derive_key(passphrase, params)).decrypt(nonce, sealed, _AAD + public)
    except (InvalidTag, ValueError) as exc:
        raise WrongSigningPassphrase(str(path)) from exc
    key = SigningKey.from_raw(raw)
    if key.public_key != public:
        raise IdentityDamaged(str(path), "the private key does not match the public key")
    return key


def load_signing_key(directory: Path, passphrase: bytes, name: str | None = None) -> SigningKey:
    """Decrypt the identity's signing key with ``passphrase``.

    Raises NoSigningIdentity, IdentityInsecure, IdentityDamaged, WrongSigningPassphrase.
    """
    path = key_path(directory, name)
    return _unseal(path, _read(path), passphrase)


def replace_identity(
    directory: Path,
    old: SigningKey,
    passphrase: bytes,
    *,
    name: str | None = None,
    kdf: KdfParams | None = None,
    staged: SigningKey | None = None,
) -> SigningKey:
    """Make ``staged`` (default: a fresh key) the identity's next key (encrypted with
    ``passphrase``), keep the old key
    file under ``retired/<old public key hex>`` and put the new one in its place;
    returns the new key.  ``old`` must be the identity's current key.  The caller
    records the rotation (:func:`steve.trust.records.rotation_record`) *before*
    calling this, so a crash never leaves a new key nobody vouched for."""
    path = key_path(directory, name)
    current = read_identity(directory, name)
    if current.public_key != old.public_key:
        raise IdentityDamaged(str(path), "the key to rotate from is not the identity's key")
    new = staged or SigningKey.generate()
    raw = new._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    retired = directory / RETIRED_DIR
    _private_dir(retired)
    keep = retired / old.public_key.hex()
    write_private(keep, path.read_text(encoding="utf-8"))
    write_private(path, _sealed_record(new, raw, passphrase, kdf))
    return new


__all__ = [
    "KEY_FILE",
    "RETIRED_DIR",
    "IdentityInfo",
    "SigningKey",
    "check_identity_name",
    "create_identity",
    "events_key_id",
    "key_path",
    "keyid",
    "list_identities",
    "load_signing_key",
    "parse_public_key",
    "parse_public_pem",
    "public_pem",
    "read_identity",
    "replace_identity",
    "verify_signature",
]
