"""What RESEARCH may fetch and how much: a question's source policy and budget.

A :class:`SourcePolicy` is the filter every fetch passes (the policy gate's
``net.fetch`` rule only says whether fetching is allowed at all): allowed and
denied domains, media types, the page size cap, robots.txt, redirects and the
time cap.  A :class:`Budget` bounds one question's research (pages, bytes,
model tokens, seconds).  Both are plain data, kept in the scope record
(:mod:`steve.research.scope`) as CBOR maps.

    >>> SourcePolicy(allow=("example.org",)).check_url("https://docs.example.org/a")
    >>> domain_matches("example.org", "evil-example.org")
    False
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

from steve.errors import MediaTypeRefused, ScopeInvalid, SourcePolicyRefused

__all__ = [
    "DEFAULT_MEDIA_TYPES",
    "Budget",
    "SourcePolicy",
    "domain_matches",
    "host_of",
    "normalise_domain",
    "without_credentials",
]

DEFAULT_MEDIA_TYPES: tuple[str, ...] = (
    "text/html",
    "application/xhtml+xml",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
    "application/pdf",
)
SCHEMES = frozenset({"http", "https"})


def normalise_domain(domain: str) -> str:
    """``*.Example.org.`` -> ``example.org`` (an entry covers the domain and its
    subdomains; a leading ``*.`` or ``.`` says the same thing)."""
    d = domain.strip().lower().rstrip(".")
    while d.startswith(("*.", ".")):
        d = d[2:] if d.startswith("*.") else d[1:]
    return d


def domain_matches(entry: str, host: str) -> bool:
    """Whether ``host`` is the domain ``entry`` or one of its subdomains (labels
    compared whole: ``example.org`` never covers ``badexample.org``)."""
    d, h = normalise_domain(entry), host.lower().rstrip(".")
    return bool(d) and (h == d or h.endswith("." + d))


def without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part (what may be recorded of it)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def host_of(url: str) -> str:
    """The lower-case host name of ``url`` ("" when it has none)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


@dataclass(frozen=True, slots=True)
class Budget:
    """One question's research budget (0 = no limit)."""

    pages: int = 50
    bytes: int = 50 * 1024 * 1024
    tokens: int = 200_000
    seconds: int = 600

    def to_record(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_record(cls, value: object, where: str = "budget") -> Budget:
        return cls(**_ints(value, cls, where))


@dataclass(frozen=True, slots=True)
class SourcePolicy:
    """Which URLs and responses a fetch accepts.

    ``allow`` empty means every domain not denied; ``deny`` wins over ``allow``.
    ``media_types`` are exact types or ``type/*`` patterns.
    """

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    media_types: tuple[str, ...] = DEFAULT_MEDIA_TYPES
    max_page_bytes: int = 5 * 1024 * 1024
    robots: bool = True
    max_redirects: int = 5
    timeout_seconds: int = 30

    def domain_allowed(self, host: str) -> str | None:
        """None when ``host`` may be fetched, else why not."""
        if not host:
            return "no host name"
        if any(domain_matches(d, host) for d in self.deny):
            return f"domain {host} is denied"
        if self.allow and not any(domain_matches(d, host) for d in self.allow):
            return f"domain {host} is not among the allowed domains"
        return None

    def check_url(self, url: str) -> None:
        """Raise :class:`SourcePolicyRefused` unless the policy allows ``url``."""
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
        except ValueError as exc:
            raise SourcePolicyRefused(url, f"not a URL ({exc})") from None
        if scheme not in SCHEMES:
            raise SourcePolicyRefused(url, f"scheme {scheme or '(none)'!r} is not http(s)")
        if parts.username is not None or parts.password is not None:
            # the URL is stored in the source record: never credentials
            raise SourcePolicyRefused(
                without_credentials(url), "a URL with credentials is not fetched"
            )
        why = self.domain_allowed(host_of(url))
        if why is not None:
            raise SourcePolicyRefused(url, why)

    def media_allowed(self, media_type: str) -> bool:
        return any(fnmatch.fnmatchcase(media_type, p) for p in self.media_types)

    def check_media(self, url: str, media_type: str) -> None:
        if not self.media_allowed(media_type):
            raise MediaTypeRefused(url, media_type or "(none)")

    def to_record(self) -> dict[str, Any]:
        return {
            "allow": list(self.allow),
            "deny": list(self.deny),
            "media_types": list(self.media_types),
            "max_page_bytes": self.max_page_bytes,
            "robots": self.robots,
            "max_redirects": self.max_redirects,
            "timeout_seconds": self.timeout_seconds,
        }

    @classmethod
    def from_record(cls, value: object, where: str = "policy") -> SourcePolicy:
        if not isinstance(value, Mapping):
            raise ScopeInvalid(f"{where}: not a map")
        lists = {}
        for key in ("allow", "deny", "media_types"):
            items = value.get(key, [])
            if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
                raise ScopeInvalid(f"{where}.{key}: must be a list of strings")
            lists[key] = tuple(items)
        robots = value.get("robots", True)
        if not isinstance(robots, bool):
            raise ScopeInvalid(f"{where}.robots: must be true or false")
        ints = {
            k: v
            for k, v in value.items()
            if k in ("max_page_bytes", "max_redirects", "timeout_seconds")
        }
        kwargs: dict[str, Any] = {**lists, "robots": robots}
        kwargs.update(_ints(ints, cls, where, partial=True))
        return cls(**kwargs)

    def with_changes(self, **changes: Any) -> SourcePolicy:
        policy = replace(self, **changes)
        policy.validate()
        return policy

    def validate(self) -> None:
        if self.max_page_bytes < 1:
            raise ScopeInvalid("max_page_bytes must be at least 1")
        if not 0 <= self.max_redirects <= 50:
            raise ScopeInvalid("max_redirects must be 0..50")
        if not 1 <= self.timeout_seconds <= 3600:
            raise ScopeInvalid("timeout_seconds must be 1..3600")
        for d in (*self.allow, *self.deny):
            if not normalise_domain(d) or "/" in d or ":" in d:
                raise ScopeInvalid(f"{d!r} is not a domain name")


def _ints(value: object, cls: type, where: str, partial: bool = False) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ScopeInvalid(f"{where}: not a map")
    names = {f.name for f in fields(cls) if f.type in ("int", int)}
    out: dict[str, int] = {}
    for key, item in value.items():
        if key not in names:
            raise ScopeInvalid(f"{where}: unknown field {key!r}")
        if type(item) is not int or item < 0:
            raise ScopeInvalid(f"{where}.{key}: must be a whole number >= 0")
        out[str(key)] = item
    if not partial and set(out) != names:
        raise ScopeInvalid(f"{where}: missing {sorted(names - set(out))}")
    return out
