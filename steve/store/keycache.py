"""A cached-key path for scripts: the Linux kernel keyring.

``steve unlock`` derives the key once (Argon2id is deliberately slow) and
puts the raw 32-byte key in the calling user's kernel keyring as a ``user``
key named ``steve:<repository id>`` with an expiry.  The key lives in kernel
memory only: never in a file, never on disk, gone at expiry, at ``steve
lock``, or when the user's last session ends.  Later commands look it up by
name and skip Argon2id.

Only processes of the same user can read it (the same boundary as a 0600
file, without the file).  Platforms without keyctl(2) get KeyCacheError.
"""

from __future__ import annotations

import ctypes
import os
import sys

from steve.errors import KeyCacheError

_SYSCALLS = {  # (add_key, keyctl)
    "x86_64": (248, 250),
    "amd64": (248, 250),
    "aarch64": (217, 219),
    "arm64": (217, 219),
}
KEY_SPEC_USER_KEYRING = -4
KEYCTL_SETPERM = 5
KEYCTL_UNLINK = 9
KEYCTL_SEARCH = 10
KEYCTL_READ = 11
KEYCTL_SET_TIMEOUT = 15
KEYCTL_INVALIDATE = 21
# possessor: all; same user: view, read, write, search, setattr
_PERM = 0x3F000000 | 0x00010000 | 0x00020000 | 0x00040000 | 0x00080000 | 0x00200000

MAX_TTL = 30 * 86400
"""The longest a key may stay cached (30 days).  The kernel's timeout is a 32-bit
count of seconds, so anything larger would wrap (2**32 s meaning "never")."""
READ_BACK_SLACK = 10  # seconds
_PROC_KEYS = "/proc/keys"
_TIMEOUT_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_ENOKEY = 126
_EKEYEXPIRED = 127
_EKEYREVOKED = 128


def _syscalls() -> tuple[ctypes.CDLL, int, int]:
    if sys.platform != "linux":
        raise KeyCacheError(f"the kernel keyring needs Linux, this is {sys.platform}")
    machine = os.uname().machine  # platform.machine(), without importing platform
    numbers = _SYSCALLS.get(machine.lower())
    if numbers is None:
        raise KeyCacheError(f"no keyctl syscall numbers known for {machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc, numbers[0], numbers[1]


def _description(repository_id: str) -> bytes:
    return f"steve:{repository_id}".encode()


def _fail(what: str) -> KeyCacheError:
    err = ctypes.get_errno()
    return KeyCacheError(f"{what} failed: {os.strerror(err)} (errno {err})")


def cache_key(repository_id: str, key: bytes, ttl_seconds: int) -> tuple[int, int]:
    """Store ``key`` for ``repository_id`` in the user keyring for ``ttl_seconds``
    (1..MAX_TTL); returns the lifetime the keyring itself reports, read back
    (see :func:`expiry`).  If the keyring does not confirm an expiry the key is
    dropped again and KeyCacheError raised: a key is never cached forever."""
    if type(ttl_seconds) is not int or not 0 < ttl_seconds <= MAX_TTL:
        raise KeyCacheError(f"the cache lifetime {ttl_seconds!r}s is outside 1..{MAX_TTL}s")
    libc, add_key, keyctl = _syscalls()
    desc = _description(repository_id)
    serial = libc.syscall(
        add_key, b"user", desc, key, ctypes.c_size_t(len(key)), ctypes.c_int(KEY_SPEC_USER_KEYRING)
    )
    if serial < 0:
        raise _fail("add_key")
    if libc.syscall(keyctl, KEYCTL_SETPERM, ctypes.c_long(serial), ctypes.c_ulong(_PERM)) < 0:
        raise _fail("keyctl(SETPERM)")
    if (
        libc.syscall(keyctl, KEYCTL_SET_TIMEOUT, ctypes.c_long(serial), ctypes.c_uint(ttl_seconds))
        < 0
    ):
        error = _fail("keyctl(SET_TIMEOUT)")
        forget_key(repository_id)
        raise error
    left = _timeout_of(int(serial))
    # the kernel rounds down to whole units; allow for seconds passing meanwhile
    if left is None or not left[0] <= ttl_seconds <= left[1] + READ_BACK_SLACK:
        forget_key(repository_id)
        raise KeyCacheError(
            f"the keyring reports {left or 'no expiry'} for a {ttl_seconds}s cache; key dropped"
        )
    return left


def _timeout_of(serial: int) -> tuple[int, int] | None:
    """(at least, at most) seconds left for key ``serial`` as /proc/keys reports them
    (whole seconds, minutes, hours, days or weeks, rounded down); None when the
    key has no expiry, has expired, or is not listed."""
    try:
        with open(_PROC_KEYS, encoding="ascii", errors="replace") as fh:  # noqa: PTH123
            lines = fh.read().splitlines()
    except OSError as exc:
        raise KeyCacheError(f"cannot read {_PROC_KEYS} to check the expiry: {exc}") from exc
    wanted = f"{serial:08x}"
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[0] == wanted:
            timeout = fields[3]
            unit = _TIMEOUT_UNITS.get(timeout[-1:])
            if unit is None or not timeout[:-1].isdigit():
                return None  # "perm" or "expd"
            n = int(timeout[:-1])
            return n * unit, (n + 1) * unit
    return None


def expiry(repository_id: str) -> tuple[int, int] | None:
    """(at least, at most) seconds until the cached key of ``repository_id`` expires,
    as the kernel reports it; None when there is no cached key (or it never expires)."""
    libc, _, keyctl = _syscalls()
    serial = _search(libc, keyctl, repository_id)
    return None if serial is None else _timeout_of(serial)


def _search(libc: ctypes.CDLL, keyctl: int, repository_id: str) -> int | None:
    serial = libc.syscall(
        keyctl,
        KEYCTL_SEARCH,
        ctypes.c_int(KEY_SPEC_USER_KEYRING),
        b"user",
        _description(repository_id),
        ctypes.c_long(0),
    )
    if serial < 0:
        if ctypes.get_errno() in (_ENOKEY, _EKEYEXPIRED, _EKEYREVOKED):
            return None
        raise _fail("keyctl(SEARCH)")
    return int(serial)


def cached_key(repository_id: str) -> bytes | None:
    """The cached key for ``repository_id``, or None when absent, expired or unavailable.

    A cache is optional: if the keyring cannot be used at all (no keyctl,
    or a seccomp profile that refuses it) this is "no cached key", and the
    caller falls back to the passphrase.
    """
    try:
        libc, _, keyctl = _syscalls()
        serial = _search(libc, keyctl, repository_id)
    except KeyCacheError:
        return None
    if serial is None:
        return None
    buf = ctypes.create_string_buffer(64)
    n = libc.syscall(keyctl, KEYCTL_READ, ctypes.c_long(serial), buf, ctypes.c_size_t(64))
    data = buf.raw[: max(0, min(n, 64))]
    ctypes.memset(buf, 0, 64)
    if n < 0 or n > 64:
        return None
    return data


def forget_key(repository_id: str) -> bool:
    """Invalidate the cached key; True if there was one."""
    libc, _, keyctl = _syscalls()
    serial = _search(libc, keyctl, repository_id)
    if serial is None:
        return False
    # older kernels lack INVALIDATE: unlink from the user keyring instead
    if (
        libc.syscall(keyctl, KEYCTL_INVALIDATE, ctypes.c_long(serial)) < 0
        and libc.syscall(
            keyctl, KEYCTL_UNLINK, ctypes.c_long(serial), ctypes.c_int(KEY_SPEC_USER_KEYRING)
        )
        < 0
    ):
        raise _fail("keyctl(INVALIDATE)")
    return True
