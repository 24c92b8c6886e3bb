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

import blake3

from steve.errors import BadPassphrase, InvalidInput
from steve.record import Record

_set = object.__setattr__  # a frozen record's fields are set once, in __init__

MEMORY_KIB = 65536
ITERATIONS = 4
PARALLELISM = 1
KEY_BYTES = 32
SALT_BYTES = 16
_CHECK_CONTEXT = b"steve key check v1"

# What a config may ask for (a tampered config must not exhaust memory or hang
# every command): each parameter in range, and the work (memory x passes) at
# most 16 times the default's.
MEMORY_KIB_MAX = 1 << 20  # 1 GiB
ITERATIONS_MAX = 64
PARALLELISM_MAX = 16
WORK_MAX = 16 * MEMORY_KIB * ITERATIONS  # KiB x passes
SALT_BYTES_MIN, SALT_BYTES_MAX = 8, 64


class KdfParams(Record):
    __match_args__ = ("salt", "memory_kib", "iterations", "parallelism")
    __slots__ = __match_args__
    salt: bytes
    memory_kib: int
    iterations: int
    parallelism: int

    def __init__(
        self,
        salt: bytes,
        memory_kib: int = MEMORY_KIB,
        iterations: int = ITERATIONS,
        parallelism: int = PARALLELISM,
    ) -> None:
        _set(self, "salt", salt)
        _set(self, "memory_kib", memory_kib)
        _set(self, "iterations", iterations)
        _set(self, "parallelism", parallelism)

    @classmethod
    def fresh(cls) -> KdfParams:
        return cls(os.urandom(SALT_BYTES))

    def validate(self) -> None:
        """Raise InvalidInput unless every parameter lies in the documented range."""
        if not SALT_BYTES_MIN <= len(self.salt) <= SALT_BYTES_MAX:
            raise InvalidInput(
                "KDF salt length out of range",
                f"{len(self.salt)} bytes (allowed {SALT_BYTES_MIN}..{SALT_BYTES_MAX})",
            )
        for name, value, low, high in (
            ("parallelism", self.parallelism, 1, PARALLELISM_MAX),
            ("memory_kib", self.memory_kib, 8 * max(1, self.parallelism), MEMORY_KIB_MAX),
            ("iterations", self.iterations, 1, ITERATIONS_MAX),
        ):
            if type(value) is not int or not low <= value <= high:
                raise InvalidInput(
                    "KDF parameters out of range", f"{name} = {value!r} (allowed {low}..{high})"
                )
        if self.memory_kib * self.iterations > WORK_MAX:
            raise InvalidInput(
                "KDF parameters out of range",
                f"memory_kib x iterations = {self.memory_kib * self.iterations} "
                f"(at most {WORK_MAX}, 16x the default)",
            )


def derive_key(passphrase: str | bytes, params: KdfParams) -> bytes:
    params.validate()
    try:
        secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    except UnicodeEncodeError:  # lone surrogates: undecodable bytes from the environment
        raise BadPassphrase("the caller (not UTF-8 text)") from None
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
