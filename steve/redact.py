"""The one redaction pipeline of STEVE.

Every writer of text that lasts (step logs, receipts, event payloads, error
messages, the LLM request log, git exports) passes it through a
:class:`Redactor` first.  A redactor replaces

* the values of registered secrets with ``[REDACTED:<name>]``, and
* common key shapes (:data:`SHAPES`) with ``[REDACTED:<shape>]``.

All of it is one RE2 automaton (``google-re2``): registered values first in
the alternation, longest first, then the shapes, so at any position a
registered secret wins over a shape and a longer secret over a shorter one.
RE2 runs in time linear in the input whatever the number of secrets, which
is what makes the pipeline fast (docs/benchmarks.md).

Streams (:meth:`Redactor.stream`) hold back the last ``window - 1`` bytes of
what they were fed, where ``window`` is the longest match the redactor can
make (the longest registered value; with shapes, the longest bounded shape),
so a value split across chunk boundaries is still caught: the concatenated
output of a stream is byte-for-byte the output of :meth:`Redactor.bytes` on
the concatenated input.

Limits (docs/secrets.md): encodings of a value (base64, hex, URL-escaping) are
not recognised; values shorter than :data:`MIN_SECRET_LEN` bytes, or that
could merge with a placeholder into a new occurrence of themselves, are
refused by :func:`check_secret` rather than redacted badly.
"""

from __future__ import annotations

import bisect
import builtins
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import re2

from steve.errors import WeakSecretValue

MIN_SECRET_LEN = 8
PLACEHOLDER_PREFIX = b"[REDACTED:"
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")

# How far ahead a shape needs to see to decide a match (its longest fixed
# part: a PEM header or footer line): the most a stream holds back for one.
SHAPE_WINDOW = 128
# A stream holds a shape match that may still grow (it ends near the end of
# what was fed) at most this long; a longer one is cut (docs/secrets.md).
STREAM_HOLD_MAX = 64 * 1024


@dataclass(frozen=True)
class Shape:
    """A common key shape: its placeholder name, its RE2 pattern, and the literal
    starts of a match (``starts``; a stream holds back text from where one of
    them begins, or may begin, near the end of what it was fed).

    ``keep`` means the pattern's first group is kept in clear (``Bearer ``);
    ``footer`` is an optional closing line the match may still be waiting for.
    """

    name: str
    pattern: str
    starts: tuple[str, ...]
    keep: bool = False
    footer: str | None = None


SHAPES: tuple[Shape, ...] = (
    Shape("anthropic-key", r"sk-ant-[A-Za-z0-9_\-]{20,}", ("sk-",)),
    Shape("openai-key", r"sk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}", ("sk-",)),
    Shape("aws-access-key", r"(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}",
          ("AKIA", "ASIA", "AGPA", "AIDA", "AROA")),
    Shape("github-token", r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
          (*(f"gh{c}_" for c in "pousr"), "github_pat_")),
    Shape("slack-token", r"xox[abposr]-[A-Za-z0-9\-]{10,}", tuple(f"xox{c}-" for c in "abposr")),
    Shape("google-api-key", r"AIza[0-9A-Za-z_\-]{35}", ("AIza",)),
    Shape("pem-private-key",
          r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----[A-Za-z0-9+/=\s]*"
          r"(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----)?",
          ("-----BEGIN ",), footer="-----END "),
    Shape("bearer-token", r"([Bb]earer[ \t]{1,16})[A-Za-z0-9\-._~+/]{8,}={0,2}",
          tuple(f"{b}earer{w}" for b in "Bb" for w in " \t"), keep=True),
)
_STARTS = sorted({start.encode() for s in SHAPES for start in s.starts})
_START_RE = re.compile(b"|".join(re.escape(s) for s in _STARTS))
_START_MAX = max(len(s) for s in _STARTS)
_START_FIRST = frozenset(s[0] for s in _STARTS)
_SHAPE_GROUPS = {s.name: int(re2.compile(s.pattern).groups) for s in SHAPES}


def placeholder(name: str) -> bytes:
    """The bytes that replace a value: ``[REDACTED:name]``."""
    return PLACEHOLDER_PREFIX + name.encode() + b"]"


def _escape(value: bytes) -> str:
    """An RE2 (Latin-1) pattern matching exactly ``value``."""
    return "".join(
        chr(b) if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122) else f"\\x{b:02x}"
        for b in value
    )


_SHAPE_ANY = re2.compile("|".join(f"(?:{s.pattern})" for s in SHAPES))


def check_name(name: str) -> None:
    """Raise :class:`WeakSecretValue` unless ``name`` can name a secret.

    A name is 1-64 of ``A-Z a-z 0-9 _ . -`` starting with a letter or ``_``,
    and must not itself look like a key (its placeholder would be redacted).
    """
    if not NAME_RE.fullmatch(name) or _SHAPE_ANY.search(name) is not None:
        raise WeakSecretValue(name, "not a valid secret name")


def check_secret(name: str, value: bytes, names: Iterable[str] = ()) -> None:
    """Raise :class:`WeakSecretValue` when ``value`` cannot be redacted reliably.

    ``names`` are the other names whose placeholders may sit next to it.
    A value is refused when it is shorter than :data:`MIN_SECRET_LEN`, occurs
    inside a placeholder, contains ``[REDACTED:``, or could join the edge of
    a placeholder into a new occurrence of itself (it ends with the start of
    one or starts with the end of one).
    """
    if len(value) < MIN_SECRET_LEN:
        raise WeakSecretValue(name, f"shorter than {MIN_SECRET_LEN} bytes")
    if PLACEHOLDER_PREFIX in value:
        raise WeakSecretValue(name, "contains a redaction placeholder")
    holders = [placeholder(n) for n in {name, *names, *(s.name for s in SHAPES)}]
    if any(value in ph for ph in holders):
        raise WeakSecretValue(name, "occurs inside a redaction placeholder")
    # a proper suffix that begins a placeholder starts at a "[", a proper prefix
    # that ends one ends at a "]": only those can merge
    for i in (i for i in range(1, len(value)) if value[i] == 0x5B):
        if any(ph.startswith(value[i:]) for ph in holders):
            raise WeakSecretValue(name, "could merge with a redaction placeholder")
    for j in (j for j in range(len(value) - 1) if value[j] == 0x5D):
        if any(ph.endswith(value[: j + 1]) for ph in holders):
            raise WeakSecretValue(name, "could merge with a redaction placeholder")


class Redactor:
    """Replaces registered secret values and common key shapes.

    ``secrets`` maps names to values (bytes); ``patterns`` turns the key
    shapes on.  Construction compiles one automaton; use it for many calls.
    """

    def __init__(self, secrets: Mapping[str, bytes] = MappingProxyType({}),
                 patterns: bool = True) -> None:
        by_value: dict[bytes, str] = {}
        for name in sorted(secrets):
            check_name(name)
            value = bytes(secrets[name])
            check_secret(name, value, secrets)
            by_value.setdefault(value, name)
        self._names = by_value
        self._shapes = SHAPES if patterns else ()
        alts: list[str] = []
        if by_value:
            ordered = sorted(by_value, key=lambda v: (-len(v), v))
            alts.append("(" + "|".join(_escape(v) for v in ordered) + ")")
        for shape in self._shapes:
            alts.append(f"({shape.pattern})")
        self.window = max([len(v) for v in by_value] +
                          ([SHAPE_WINDOW] if self._shapes else []) + [1])
        # what a stream's tail is compared with: values and literal shape starts
        self._secret_window = max([len(v) for v in by_value] + [1])
        self._values_sorted = sorted(by_value)
        self._first_bytes = frozenset(v[0] for v in by_value)
        self._starts = _STARTS if self._shapes else []
        self._regex: Any = None
        if alts:
            options = re2.Options()
            options.encoding = re2.Options.Encoding.LATIN1
            options.max_mem = 256 << 20
            self._regex = re2.compile("|".join(alts).encode("latin-1"), options)
        # group index of each shape's whole match (and of its kept prefix)
        self._groups: list[tuple[int, Shape]] = []
        index = 1 + (1 if by_value else 0)
        for shape in self._shapes:
            self._groups.append((index, shape))
            index += 1 + _SHAPE_GROUPS[shape.name]

    @property
    def names(self) -> tuple[str, ...]:
        """The registered names (not their values)."""
        return tuple(sorted(set(self._names.values())))

    def _replacement(self, m: Any) -> bytes:
        if self._names and m.group(1) is not None:
            return placeholder(self._names[m.group(1)])
        for index, shape in self._groups:
            if m.group(index) is not None:
                kept = m.group(index + 1) if shape.keep else b""
                return bytes(kept or b"") + placeholder(shape.name)
        raise AssertionError("a match without a group")  # pragma: no cover

    def text(self, s: str) -> str:
        """``s`` with every secret and key shape replaced (UTF-8 view of the values)."""
        if self._regex is None or not s:
            return s
        raw = s.encode("utf-8", "surrogatepass")
        out = self.bytes(raw)
        if out == raw:
            return s
        try:
            return out.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return out.decode("utf-8", "replace")

    def value(self, v: object) -> object:
        """``v`` with every text and bytes inside it redacted (dicts, lists, tuples;
        keys too).  For event payloads and other structured records."""
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, bytes | bytearray | memoryview):
            return self.bytes(bytes(v))
        if isinstance(v, Mapping):
            return {self.value(k): self.value(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return type(v)(self.value(x) for x in v) if isinstance(v, tuple) else [
                self.value(x) for x in v]
        return v

    def stream(self) -> StreamRedactor:
        """A redactor for chunks of one stream (a step's log)."""
        return StreamRedactor(self)

    def _shape_of(self, m: Any) -> Shape | None:
        if self._names and m.group(1) is not None:
            return None
        return next((shape for index, shape in self._groups if m.group(index) is not None), None)

    def _hold_from(self, buffer: builtins.bytes, matched: set[int]) -> int:
        """Where a stream holds ``buffer`` back from (its length: nowhere): the earliest
        position near the end where a registered value or a shape may still begin.

        That is where the rest of ``buffer`` is a proper prefix of a value (or a
        value a longer one may extend) or of a literal shape start, or where a
        shape start begins that no match begins at (``matched``) and that no
        line end has ruled out yet.
        """
        size = len(buffer)
        found = size
        values = self._values_sorted
        if values:
            first = self._first_bytes
            for p in range(max(0, size - (self._secret_window - 1)), size):
                if buffer[p] not in first:
                    continue
                tail = buffer[p:]
                i = bisect.bisect_left(values, tail)
                if i < len(values) and values[i] == tail:
                    i += 1  # complete here; a longer value may still begin with it
                if i < len(values) and values[i].startswith(tail):
                    found = p
                    break
        if self._starts:
            lo = max(0, size - (self.window - 1))
            for m in _START_RE.finditer(buffer, lo, found):
                if m.start() not in matched and b"\n" not in buffer[m.end():]:
                    return int(m.start())
            for p in range(max(lo, size - _START_MAX + 1), found):
                if buffer[p] in _START_FIRST:
                    tail = buffer[p:]
                    if any(start.startswith(tail) for start in self._starts):
                        return p
        return found

    def _growing(self, m: Any, size: int) -> bool:
        """Whether a match of a shape may still grow with more input."""
        shape = self._shape_of(m)
        if shape is None:
            return False  # a registered value is a fixed string
        if int(m.end()) >= size:
            return True  # a token (or padding) running into the end
        if shape.footer is not None and shape.footer.encode() not in m.group():
            return bool(m.end() > size - (self.window - 1))  # a footer may still come
        return False

    def _split(self, buffer: builtins.bytes, final: bool) -> tuple[builtins.bytes, builtins.bytes]:
        """Redact what of ``buffer`` is settled; return (output, held back).

        Positions before ``cut`` are settled: no registered value and no shape
        that begins there can change with more input.  A shape match that may
        still grow (a longer token, a PEM footer still to come) is held back
        from its start, up to :data:`STREAM_HOLD_MAX` bytes.
        """
        size = len(buffer)
        if self._regex is None:
            cut = size if final else self._hold_from(buffer, set())
            return buffer[:cut], buffer[cut:]
        matches = list(self._regex.finditer(buffer))
        cut = size
        if not final:
            cut = self._hold_from(buffer, {int(m.start()) for m in matches})
            for m in matches:  # a match that may still grow is held from its start
                if m.start() >= cut:
                    break
                if self._growing(m, size) and size - m.start() <= STREAM_HOLD_MAX:
                    cut = m.start()
                    break
        out: list[builtins.bytes] = []
        pos = 0
        for m in matches:
            start, end = m.start(), m.end()
            if start >= cut:
                break
            out.append(buffer[pos:start])
            out.append(self._replacement(m))
            pos = end
        settled = max(pos, cut)
        out.append(buffer[pos:settled])
        return b"".join(out), buffer[settled:]

    def bytes(self, data: builtins.bytes) -> builtins.bytes:
        """``data`` with every secret and key shape replaced."""
        if self._regex is None or not data:
            return data
        return builtins.bytes(self._regex.sub(self._replacement, data))


class StreamRedactor:
    """Redacts a stream fed in chunks; values split across chunks are caught.

    ``feed`` returns what is settled, holding back at most ``window - 1``
    bytes; ``close`` returns the rest.  The concatenation of the outputs is
    ``Redactor.bytes`` of the concatenation of the inputs.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._held = b""
        self._closed = False

    def feed(self, chunk: bytes) -> bytes:
        if self._closed:
            raise ValueError("feed() after close()")
        if not chunk:
            return b""
        out, self._held = self._redactor._split(self._held + chunk, final=False)
        return out

    def close(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        out, _ = self._redactor._split(self._held, final=True)
        self._held = b""
        return out
