"""Key derivation: Argon2id from a passphrase to a raw 256-bit SQLCipher key.

Parameters were chosen by measurement on a 2-core x86_64 machine (see
docs/storage.md): 64 MiB, 4 passes, 1 lane takes about 165 ms, above
OWASP's minimum (19 MiB, 2 passes, 1 lane).  They are recorded per
repository in ``.steve/config`` with a random 16-byte salt, so they can be
raised later without breaking existing repositories.

The config also stores a *key check*: a keyed BLAKE3 of a fixed context
string.  It lets STEVE tell "wrong key" from "damaged database" right after
deriving the key, before SQLCipher reads a page (SQLCipher reports both as
``file is not a database``).  It reveals nothing the database file itself
does not: either one lets an attacker test a guessed passphrase after
paying for Argon2id.
"""

from __future__ import annotations

import os
from _operator import _compare_digest  # hmac.compare_digest, without loading OpenSSL
from dataclasses import dataclass

import blake3

from steve.errors import InvalidInput

MEMORY_KIB = 65536
ITERATIONS = 4
PARALLELISM = 1
KEY_BYTES = 32
SALT_BYTES = 16
_CHECK_CONTEXT = b"steve key check v1"


@dataclass(frozen=True, slots=True)
class KdfParams:
    salt: bytes
    memory_kib: int = MEMORY_KIB
    iterations: int = ITERATIONS
    parallelism: int = PARALLELISM

    @classmethod
    def fresh(cls) -> KdfParams:
        return cls(os.urandom(SALT_BYTES))

    def validate(self) -> None:
        if len(self.salt) < 8:
            raise InvalidInput("KDF salt too short", f"{len(self.salt)} bytes")
        if self.memory_kib < 8 * self.parallelism or self.iterations < 1 or self.parallelism < 1:
            raise InvalidInput("KDF parameters out of range", repr(self))


def derive_key(passphrase: str | bytes, params: KdfParams) -> bytes:
    params.validate()
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    if not secret:
        raise InvalidInput("empty passphrase", "a passphrase of at least one character is needed")
    # imported here: only key derivation needs argon2 (keeps cached-key start-up lean)
    from argon2.low_level import Type, hash_secret_raw

    return hash_secret_raw(
        secret,
        params.salt,
        time_cost=params.iterations,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )


def key_check(key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise InvalidInput("invalid key", f"a raw key is {KEY_BYTES} bytes, not {len(key)}")
    return blake3.blake3(_CHECK_CONTEXT, key=key).digest()


def key_matches(key: bytes, check: bytes) -> bool:
    return len(key) == KEY_BYTES and _compare_digest(key_check(key), check)
