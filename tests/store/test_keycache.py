"""The key cache's lifetime (issue 12, item 9), against the real kernel keyring.

``unlock --ttl 1.5h`` cached for 15 hours (every dot stripped), ``4294967296s``
gave a key with no expiry (the kernel's timeout is 32-bit), ``4294967297s``
one that expired after a second.  Durations now have one strict, bounded
parser, and the expiry the keyring really set is read back.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from steve.cli.plumbing import parse_duration
from steve.errors import InvalidInput, KeyCacheError
from steve.store import keycache


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("14d", 14 * 86400),
        ("2w", 14 * 86400),
        ("2.weeks.ago", 14 * 86400),
        ("3.days", 3 * 86400),
        ("1 hour", 3600),
        ("45 minutes", 2700),
    ],
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["1.5h", "1.5.hours", "h", "", "10", "-5m", "1e3s", "4294967296s", "9" * 5000 + "s",
     "2.weeks.ago.ago", "١٥m", "15 m s"],
)  # fmt: skip
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text, maximum=keycache.MAX_TTL)


def test_ttl_bound_is_below_the_kernels_32_bit_timeout() -> None:
    assert keycache.MAX_TTL < 2**32
    assert parse_duration(f"{keycache.MAX_TTL}s", maximum=keycache.MAX_TTL) == keycache.MAX_TTL
    with pytest.raises(InvalidInput):
        parse_duration(f"{keycache.MAX_TTL + 1}s", maximum=keycache.MAX_TTL)


@pytest.fixture
def repository_id() -> Iterator[str]:
    rid = f"test-{uuid.uuid4().hex}"
    yield rid
    keycache.forget_key(rid)


@pytest.mark.parametrize("ttl", [90, 5400, 15 * 3600, keycache.MAX_TTL])
def test_the_keyring_expiry_is_read_back(repository_id: str, ttl: int) -> None:
    low, high = keycache.cache_key(repository_id, os.urandom(32), ttl)
    # the kernel's own report (whole units, rounded down) brackets what was asked for
    assert low <= ttl <= high + keycache.READ_BACK_SLACK
    assert high - low <= ttl
    again = keycache.expiry(repository_id)
    assert again is not None and again[0] <= ttl
    assert keycache.cached_key(repository_id) is not None


def test_an_out_of_range_ttl_never_reaches_the_kernel(repository_id: str) -> None:
    for ttl in (0, -1, keycache.MAX_TTL + 1, 2**32, 2**32 + 1):
        with pytest.raises(KeyCacheError):
            keycache.cache_key(repository_id, os.urandom(32), ttl)
    assert keycache.cached_key(repository_id) is None
