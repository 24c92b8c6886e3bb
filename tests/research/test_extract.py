"""extract_text: trafilatura for HTML, plain text as is, deterministic."""

from __future__ import annotations

from steve.research.extract import extract_text

PAGE = (
    b"<html><head><title>Hashes</title></head><body><nav>Home | About | Login</nav>"
    b"<article><h1>Content addressing</h1><p>Objects are named by the BLAKE3 hash of "
    b"their bytes, so the same bytes stored twice are one object.</p><p>A reader can "
    b"check what it was given by hashing it again.</p></article>"
    b"<footer>Copyright 2026 Example Corp</footer></body></html>"
)


def test_html_main_text_without_boilerplate() -> None:
    ex = extract_text(PAGE, "text/html", "utf-8")
    assert ex is not None
    assert "named by the BLAKE3 hash" in ex.text and "check what it was given" in ex.text
    assert "Login" not in ex.text and "Copyright" not in ex.text
    assert ex.extractor.startswith("trafilatura/")
    assert extract_text(PAGE, "text/html", "utf-8") == ex  # the same bytes, the same text


def test_plain_text_and_other_types() -> None:
    ex = extract_text("caf\u00e9 line\n".encode("latin-1"), "text/plain", "iso-8859-1")
    assert ex is not None and ex.text == "caf\u00e9 line\n" and ex.extractor == "plain/1"
    assert extract_text(b"\x89PNG", "image/png") is None
    assert extract_text(b"<html><body></body></html>", "text/html") is None
