"""Escaping text for display: stored bytes stay as they are, terminals see no tricks.

Manifest bodies, tag messages and tree entry names come from outside and may
hold terminal escape sequences (ESC), NUL and other C0/C1 controls, or
Unicode bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE makes
``exe.txt`` look like ``txt.exe``).  Every display path of ``steve log`` and
``steve cat`` passes text through :func:`escape_text`, which writes each such
character as a visible escape (``\\x1b``, ``\\x00``, ``\\u202e``) and leaves
everything else, including newlines and tabs where the caller keeps lines,
untouched.  Machine formats (``cat-file``, ``cat-manifest``'s JSON) keep
their own exact encodings.
"""

from __future__ import annotations

import re

# C0 controls except TAB and LF, DEL, C1 controls; Unicode bidi controls (ALM,
# LRM, RLM, embeddings and overrides, isolates) and the line/paragraph separators
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_UNSAFE_LINE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_text(text: str, *, one_line: bool = False) -> str:
    """``text`` with control and bidirectional characters shown as escapes.

    Newlines and tabs are kept unless ``one_line`` (then a newline is ``\\x0a``).
    Text without such characters is returned as is (the common case costs one
    ``str.isprintable``).
    """
    if text.isprintable():  # every escaped character is non-printable (Cc, Cf, Zl, Zp)
        return text
    pattern = _UNSAFE_LINE if one_line else _UNSAFE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


__all__ = ["escape_text"]
