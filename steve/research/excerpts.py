"""Excerpts: bounded spans of a source's extracted text, found by a question's terms.

An excerpt is the text between two character offsets ``[start, end)`` of
:attr:`steve.research.extract.Extracted.text` (offsets count Unicode code
points, as Python's ``str`` indexes them), at most :data:`MAX_EXCERPT`
characters long.  With the extractor's id and the mirrored bytes, anyone
re-derives it: re-extract, slice, compare (:func:`check_span`).

:func:`propose_spans` is deterministic and needs no model: it splits the
text into paragraphs (lines), scores each by how many distinct terms of the
question it contains, and keeps the best few; a paragraph longer than the
bound is cut to a window around its first match, on word boundaries.

    >>> spans = propose_spans(text, "How do existing tools define a word?")
    >>> [text[s.start : s.end] for s in spans]
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "MAX_EXCERPT",
    "Span",
    "check_span",
    "paragraphs",
    "propose_spans",
    "question_terms",
]

MAX_EXCERPT = 2000
"""The longest excerpt, in characters (the research schema's bound)."""

DEFAULT_SPANS = 3
"""Excerpts proposed per question and source."""

_WORD = re.compile(r"\w+")
_STOP_WORDS = (
    "a all an and any are as at be been but by can could did do does for from has "
    "have how i if in into is it its may me might must my no not of on or our should "
    "so some such than that the their then there these they this those to use used "
    "using was we were what when where which who why will with would yes you your"
)
_STOP = frozenset(_STOP_WORDS.split(" "))
_SUFFIXES = ("ing", "ies", "es", "ed", "s")


def _stem(word: str) -> str:
    """A crude, deterministic stem: lower case, one common English suffix and a final
    ``e`` off (``defines``, ``defined``, ``define`` -> ``defin``)."""
    w = word.casefold()
    for suffix in _SUFFIXES:
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            w = w[: -len(suffix)]
            break
    return w[:-1] if len(w) > 4 and w.endswith("e") else w


def question_terms(question: str) -> tuple[str, ...]:
    """The stems of ``question``'s content words (no stop words, 3+ letters), in order."""
    out: list[str] = []
    for m in _WORD.finditer(question):
        word = m.group(0)
        if len(word) < 3 or word.casefold() in _STOP:
            continue
        stem = _stem(word)
        if stem not in out:
            out.append(stem)
    return tuple(out)


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """``text[start:end]``, and how many question terms it holds."""

    start: int
    end: int
    score: int = 0


def paragraphs(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each non-blank line of ``text``, surrounding blanks left out."""
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
        stripped = body.strip()
        if stripped:
            lead = len(body) - len(body.lstrip())
            yield pos + lead, pos + lead + len(stripped)
        pos += len(line)


def _window(text: str, start: int, end: int, focus: int, limit: int) -> tuple[int, int]:
    """A span of at most ``limit`` characters inside ``[start, end)`` near ``focus``,
    cut on whitespace where it can be, with no whitespace at either end."""
    if end - start <= limit:
        return start, end
    s = max(start, min(focus - limit // 4, end - limit))
    e = s + limit
    cut_s, cut_e = s, e
    if s > start and not text[s - 1].isspace():  # do not start mid-word
        while cut_s < e and not text[cut_s].isspace():
            cut_s += 1
    if e < end and not text[e].isspace():  # do not end mid-word
        while cut_e > cut_s and not text[cut_e - 1].isspace():
            cut_e -= 1
    if cut_e - cut_s < limit // 2:  # one huge "word": keep the raw window
        cut_s, cut_e = s, e
    while cut_s < cut_e and text[cut_s].isspace():
        cut_s += 1
    while cut_e > cut_s and text[cut_e - 1].isspace():
        cut_e -= 1
    return cut_s, cut_e


def propose_spans(
    text: str, question: str, *, limit: int = MAX_EXCERPT, count: int = DEFAULT_SPANS
) -> list[Span]:
    """The ``count`` paragraphs of ``text`` that hold the most distinct terms of
    ``question`` (at least two, or one for a one-term question), each cut to
    ``limit`` characters, in text order.  Pure and deterministic."""
    terms = set(question_terms(question))
    if not terms or limit < 1 or count < 1:
        return []
    need = 1 if len(terms) == 1 else 2
    found: list[Span] = []
    for start, end in paragraphs(text):
        hit: set[str] = set()
        first = -1
        for m in _WORD.finditer(text, start, end):
            stem = _stem(m.group(0))
            if stem in terms:
                hit.add(stem)
                if first < 0:
                    first = m.start()
        if len(hit) < need:
            continue
        s, e = _window(text, start, end, first, limit)
        if s < e:
            found.append(Span(s, e, len(hit)))
    best = sorted(found, key=lambda sp: (-sp.score, sp.start))[:count]
    return sorted(best)


def check_span(
    text: str, start: int, end: int, excerpt: str, limit: int = MAX_EXCERPT
) -> str | None:
    """Why ``excerpt`` is not ``text[start:end]`` within the bound, or None."""
    if not 0 <= start < end <= len(text):
        return f"locator [{start}, {end}) is outside the text (0..{len(text)})"
    if end - start > limit:
        return f"locator [{start}, {end}) is longer than {limit} characters"
    found = text[start:end]
    if found != excerpt:
        return f"the text at [{start}, {end}) is {_clip(found)!r}, not {_clip(excerpt)!r}"
    return None


def _clip(value: str, width: int = 60) -> str:
    return value if len(value) <= width else value[: width - 3] + "..."
