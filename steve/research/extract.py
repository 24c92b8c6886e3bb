"""Main text out of mirrored bytes, deterministically, so an excerpt is re-derivable.

:func:`extract_text` is the one extractor RESEARCH uses: HTML through
`trafilatura <https://trafilatura.readthedocs.io>`_ (boilerplate such as
navigation and footers dropped), plain text decoded as it is.  The result
names the extractor and its version: an excerpt's locator (character
offsets into :attr:`Extracted.text`) holds only for that extractor, and a
verifier re-runs it on the mirrored bytes to check the excerpt.

    >>> ex = extract_text(html_bytes, "text/html", "utf-8")
    >>> ex.text[120:180], ex.extractor
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["HTML_TYPES", "TEXT_TYPES", "Extracted", "extract_text", "extractor_id"]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/csv"})


@dataclass(frozen=True, slots=True)
class Extracted:
    """The main text of one source and what produced it."""

    text: str
    title: str | None
    extractor: str  # "trafilatura/2.3.1" or "plain/1"


def extractor_id(media_type: str) -> str | None:
    """The extractor that :func:`extract_text` uses for ``media_type`` (None: no text)."""
    if media_type in HTML_TYPES:
        import trafilatura

        return f"trafilatura/{trafilatura.__version__}"
    if media_type in TEXT_TYPES:
        return "plain/1"
    return None


def _decode(content: bytes, charset: str | None) -> str:
    name = "utf-8"
    if charset:
        try:
            name = codecs.lookup(charset).name
        except LookupError:
            name = "utf-8"
    return content.decode(name, errors="replace")


def extract_text(content: bytes, media_type: str, charset: str | None = None) -> Extracted | None:
    """The main text of ``content`` (None for a media type without text, or a page
    with no main text).  Pure: the same bytes give the same text."""
    extractor = extractor_id(media_type)
    if extractor is None:
        return None
    if media_type in TEXT_TYPES:
        return Extracted(_decode(content, charset), None, extractor)
    import trafilatura

    doc = trafilatura.bare_extraction(
        _decode(content, charset),
        with_metadata=True,
        favor_recall=True,
        include_comments=False,
        include_tables=True,
        deduplicate=False,
    )
    text = None if doc is None else getattr(doc, "text", None)
    if not text:
        return None
    title = getattr(doc, "title", None)
    return Extracted(str(text), None if title is None else str(title), extractor)
