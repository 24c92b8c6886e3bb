"""The checkpoint signing key: an Ed25519 key that lives with the *user*, not the repository.

    >>> public = create_identity(Path("~/.config/steve"), b"signing passphrase")
    >>> key = load_signing_key(Path("~/.config/steve"), b"signing passphrase")
    >>> log = EventLog(path, repo_key, signer=key)      # or signer=<callable -> key|None>

The private key is stored in one file, ``signing-key`` (JSON), in the
identity directory the caller names (the CLI: ``STEVE_IDENTITY_DIR``, else
``$XDG_CONFIG_HOME/steve``), encrypted with a key derived from its own
passphrase by Argon2id (ChaCha20-Poly1305, the public key as associated
data).  The file is created 0600 in a 0700 directory and refused when group
or others may read it.  Nothing here reads the environment or prompts: the
directory and passphrase are parameters.

The repository holds only the *public* key (pinned in ``.steve/config``);
the repository key alone therefore cannot produce a signature that verifies
against the pinned key.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from steve.errors import (
    IdentityDamaged,
    IdentityExists,
    IdentityInsecure,
    InvalidInput,
    NoSigningIdentity,
    WrongSigningPassphrase,
)
from steve.events.model import chain_hash
from steve.store.files import write_private
from steve.store.kdf import KdfParams, derive_key

KEY_FILE = "signing-key"
"""The file, inside the identity directory, that holds the encrypted signing key."""

_FORMAT = "steve-signing-key"
_AAD = b"steve signing key v1\x00"


def key_id_of(public_key: bytes) -> bytes:
    """The id a checkpoint records for the key that signed it."""
    return chain_hash(b"steve-events-key", public_key)


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
        return key_id_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self._private.sign(message)
        return signature

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key.hex()})"


SignerSource = Callable[[], "SigningKey | None"]
"""What the event store asks for a key when it must sign: returns the key, or None
when no signing identity is available (the checkpoint is then not made)."""


def resolve_signer(signer: SigningKey | SignerSource | None) -> SigningKey | None:
    if signer is None or isinstance(signer, SigningKey):
        return signer
    return signer()


@dataclass(frozen=True, slots=True)
class IdentityInfo:
    path: Path
    public_key: bytes


def key_path(directory: Path) -> Path:
    return directory / KEY_FILE


def create_identity(
    directory: Path, passphrase: bytes, *, kdf: KdfParams | None = None
) -> IdentityInfo:
    """Generate a signing key and store it encrypted under ``directory`` (created 0700).

    Raises IdentityExists when the directory already holds one (never overwritten).
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    path = key_path(directory)
    if path.exists():
        raise IdentityExists(str(path))
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    params = kdf or KdfParams.fresh()
    nonce = os.urandom(12)
    sealed = ChaCha20Poly1305(derive_key(passphrase, params)).encrypt(nonce, raw, _AAD + public)
    record = {
        "format": _FORMAT,
        "v": 1,
        "public_key": public.hex(),
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
    # exclusive: fails if another process created one meanwhile
    write_private(path, json.dumps(record, indent=1, sort_keys=True) + "\n", exclusive=True)
    return IdentityInfo(path, public)


def _read(directory: Path) -> tuple[Path, dict[str, object]]:
    path = key_path(directory)
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
    return path, record


def read_identity(directory: Path) -> IdentityInfo:
    """The identity's public key (no passphrase needed).  NoSigningIdentity if absent."""
    path, record = _read(directory)
    try:
        return IdentityInfo(path, parse_public_key(str(record["public_key"])))
    except (KeyError, ValueError) as exc:
        raise IdentityDamaged(str(path), f"bad public_key: {exc}") from exc


def load_signing_key(directory: Path, passphrase: bytes) -> SigningKey:
    """Decrypt the identity's signing key with ``passphrase``.

    Raises NoSigningIdentity, IdentityInsecure, IdentityDamaged, WrongSigningPassphrase.
    """
    path, record = _read(directory)
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


WITNESS_DIR = "checkpoints"
"""Inside the identity directory: the newest checkpoint this identity signed, per log."""


def _record_name(repository: str) -> str:
    return "repo-" + hashlib.sha256(repository.encode()).hexdigest()


def _write_record(folder: Path, name: str, record: dict[str, str]) -> Path:
    path = folder / f"{name}.json"
    write_private(path, json.dumps(record) + "\n")
    return path


def record_checkpoint(
    directory: Path,
    log_id: str,
    message: bytes,
    signature: bytes,
    *,
    repositories: Sequence[str] = (),
) -> Path:
    """Keep the newest checkpoint the identity signed for ``log_id`` (its signed bytes
    and signature) in ``directory`` (0600 in 0700), outside the repository: a later
    verify on this machine requires the log to still contain it.

    ``repositories``: names of the repository the log belongs to (its id, its KDF
    salt): the record is also kept under each, so giving the log a new id does not
    make verify forget what was signed (see :func:`recorded_for_repositories`)."""
    if not log_id or not all(c in "0123456789abcdef" for c in log_id):
        raise ValueError(f"bad log id {log_id!r}")
    folder = directory / WITNESS_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = {"log": log_id, "message": message.hex(), "signature": signature.hex()}
    for repository in repositories:
        _write_record(folder, _record_name(repository), record)
    return _write_record(folder, log_id, record)


def recorded_for_repositories(
    directory: Path, repositories: Sequence[str]
) -> list[tuple[str, bytes, bytes]]:
    """(log id, signed bytes, signature) of the checkpoints :func:`record_checkpoint`
    kept under any of ``repositories`` (IdentityDamaged if a record is unreadable)."""
    found: list[tuple[str, bytes, bytes]] = []
    for repository in repositories:
        path = directory / WITNESS_DIR / f"{_record_name(repository)}.json"
        try:
            record = json.loads(path.read_bytes())
            found.append(
                (
                    str(record["log"]),
                    bytes.fromhex(record["message"]),
                    bytes.fromhex(record["signature"]),
                )
            )
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IdentityDamaged(str(path), f"bad checkpoint record: {exc}") from exc
    return found


def recorded_checkpoint(directory: Path, log_id: str) -> tuple[bytes, bytes] | None:
    """(signed bytes, signature) of the checkpoint :func:`record_checkpoint` kept for
    ``log_id``, or None (IdentityDamaged if the record is unreadable)."""
    path = directory / WITNESS_DIR / f"{log_id}.json"
    try:
        record = json.loads(path.read_bytes())
        return bytes.fromhex(record["message"]), bytes.fromhex(record["signature"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IdentityDamaged(str(path), f"bad checkpoint record: {exc}") from exc
