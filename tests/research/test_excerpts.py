"""Locator arithmetic (steve.research.excerpts): every proposed excerpt is found at
its locator, within the bound, on any text (property tests)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from steve.research.excerpts import (
    MAX_EXCERPT,
    check_span,
    paragraphs,
    propose_spans,
    question_terms,
)

WORDS = ["word", "words", "tool", "tools", "define", "defines", "mmap", "read", "reads"]
# text made of question words, other words, unicode and every kind of line break
pieces = st.one_of(
    st.sampled_from(WORDS),
    st.text(min_size=1, max_size=12),
    st.sampled_from([" ", "\n", "\r\n", "\u2028", "\x85", "\t", "  ", "é", "💡", "e\u0301"]),
)
texts = st.lists(pieces, max_size=400).map(" ".join)
questions = st.sampled_from(
    [
        "How do existing tools define a word?",
        "Is mmap faster than buffered reads?",
        "words",
        "?",
    ]
)


@given(texts, questions, st.integers(1, 300), st.integers(1, 5))
def test_every_span_is_found_at_its_locator_within_the_bound(
    text: str, question: str, limit: int, count: int
) -> None:
    spans = propose_spans(text, question, limit=limit, count=count)
    assert len(spans) <= count
    assert spans == sorted(spans)
    for sp in spans:
        excerpt = text[sp.start : sp.end]
        assert 0 <= sp.start < sp.end <= len(text)
        assert len(excerpt) <= limit
        assert excerpt == excerpt.strip()  # no whitespace at either end
        assert check_span(text, sp.start, sp.end, excerpt, limit) is None
        # re-derivable: the same text gives the same spans
    assert propose_spans(text, question, limit=limit, count=count) == spans


@given(texts)
def test_paragraphs_are_stripped_non_blank_lines_in_order(text: str) -> None:
    last = 0
    for start, end in paragraphs(text):
        assert last <= start < end <= len(text)
        body = text[start:end]
        assert body == body.strip() and body
        assert not any(c in body for c in "\n\r\u2028\x85")
        last = end


@given(texts, st.integers(0, 50), st.integers(1, 50))
def test_check_span_rejects_a_shifted_or_out_of_range_locator(
    text: str, start: int, length: int
) -> None:
    end = start + length
    if end <= len(text):
        excerpt = text[start:end]
        assert check_span(text, start, end, excerpt) is None
        if excerpt != excerpt[:-1] + "X":
            assert check_span(text, start, end, excerpt[:-1] + "X") is not None
    else:
        assert "outside the text" in str(check_span(text, start, end, "x"))


def test_long_paragraph_is_cut_on_word_boundaries_around_the_match() -> None:
    text = ("filler " * 600) + "existing tools define a word here " + ("more " * 600)
    (sp,) = propose_spans(text, "How do existing tools define a word?")
    excerpt = text[sp.start : sp.end]
    assert len(excerpt) <= MAX_EXCERPT and "existing tools define a word" in excerpt
    assert not excerpt.startswith("iller") and text[sp.start - 1] == " "
    assert check_span(text, sp.start, sp.end + 1, excerpt) is not None
    assert check_span(text, sp.start, sp.start + MAX_EXCERPT + 1, excerpt) is not None


def test_offsets_count_code_points() -> None:
    text = "💡 naïve café\nThe tools define a word by white space."
    (sp,) = propose_spans(text, "How do tools define a word?")
    assert (sp.start, sp.end) == (13, len(text))
    assert text[sp.start : sp.end].startswith("The tools")


def test_terms_drop_stop_words_and_stem() -> None:
    assert question_terms("How do existing tools define a word?") == (
        "exist",
        "tool",
        "defin",
        "word",
    )
    assert propose_spans("nothing relevant here", "How do tools define a word?") == []
