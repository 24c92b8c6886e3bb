"""The checkpoint signing key: an Ed25519 key that lives with the *user*, not the repository.

The identity itself (key files, named identities, PEM) is :mod:`steve.trust.keys`,
shared by everything that signs; this module re-exports it for the event log and
keeps the signer's checkpoint records.

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
from collections.abc import Callable, Sequence
from pathlib import Path

from steve.errors import IdentityDamaged
from steve.store.files import write_private
from steve.trust.keys import (
    KEY_FILE,
    IdentityInfo,
    SigningKey,
    create_identity,
    events_key_id,
    key_path,
    load_signing_key,
    parse_public_key,
    read_identity,
    verify_signature,
)

__all__ = [
    "KEY_FILE",
    "WITNESS_DIR",
    "IdentityInfo",
    "SignerSource",
    "SigningKey",
    "create_identity",
    "key_id_of",
    "key_path",
    "load_signing_key",
    "parse_public_key",
    "read_identity",
    "record_checkpoint",
    "recorded_checkpoint",
    "recorded_for_repositories",
    "resolve_signer",
    "verify_signature",
]


def key_id_of(public_key: bytes) -> bytes:
    """The id a checkpoint records for the key that signed it."""
    return events_key_id(public_key)


SignerSource = Callable[[], "SigningKey | None"]
"""What the event store asks for a key when it must sign: returns the key, or None
when no signing identity is available (the checkpoint is then not made)."""


def resolve_signer(signer: SigningKey | SignerSource | None) -> SigningKey | None:
    if signer is None or isinstance(signer, SigningKey):
        return signer
    return signer()


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
