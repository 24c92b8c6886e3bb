"""Ref names: git's check-ref-format rules, plus STEVE's namespace rule.

A full ref name is ``HEAD`` (or another all-caps one-level pseudo-ref such
as ``ORIG_HEAD``) or starts with ``refs/``.
"""

from __future__ import annotations

import re

from steve.errors import BadRefName

HEAD = "HEAD"
# git stores a ref as a file (name + ".lock" while it changes): a component of at
# most 255 - 5 bytes, and a bound on the whole name that leaves room for the path
MAX_REF_COMPONENT_BYTES = 250
MAX_REF_BYTES = 1024
_PSEUDO = re.compile(r"(?:[A-Z][A-Z_]*_)?HEAD")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
# git's DWIM order for a short name (refs.c: ref_rev_parse_rules)
LOOKUP_RULES = (
    "{}",
    "refs/{}",
    "refs/tags/{}",
    "refs/heads/{}",
    "refs/remotes/{}",
    "refs/remotes/{}/HEAD",
)


def format_problem(name: str) -> str | None:
    """Why ``name`` breaks git's check-ref-format rules, or None if it is fine."""
    if not name:
        return "empty"
    if name == "@":
        return "'@' alone is not a ref name"
    if name.startswith("/") or name.endswith("/"):
        return "starts or ends with '/'"
    if "//" in name:
        return "contains '//'"
    if ".." in name:
        return "contains '..'"
    if "@{" in name:
        return "contains '@{'"
    if name.endswith("."):
        return "ends with '.'"
    m = _FORBIDDEN.search(name)
    if m:
        return f"contains the forbidden character {m.group()!r}"
    for component in name.split("/"):
        if component.startswith("."):
            return f"component {component!r} starts with '.'"
        if component.endswith(".lock"):
            return f"component {component!r} ends with '.lock'"
    return None


def check_ref_name(name: str) -> str:
    """Return ``name`` if it is a valid full ref name, else raise BadRefName."""
    why = format_problem(name)
    if why is None and not (name.startswith("refs/") or _PSEUDO.fullmatch(name)):
        why = "full ref names start with 'refs/' (or are HEAD-like pseudo refs)"
    if why is None and name.startswith("refs/") and len(name) == len("refs/"):
        why = "nothing after 'refs/'"
    if why is not None:
        raise BadRefName(name, why)
    return name


def length_problem(name: str) -> str | None:
    """Why git could not store ``name`` (a component or the whole name too long)."""
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_REF_BYTES:
        return f"{size} bytes, more than {MAX_REF_BYTES}"
    for component in name.split("/"):
        size = len(component.encode("utf-8", "surrogatepass"))
        if size > MAX_REF_COMPONENT_BYTES:
            return f"a component of {size} bytes, more than {MAX_REF_COMPONENT_BYTES}"
    return None


def check_branch_or_tag_name(short: str) -> str:
    why = format_problem(short)
    if why is None and short.startswith("-"):
        why = "starts with '-'"
    if why is None and short == HEAD:
        why = "'HEAD' is reserved"
    if why is not None:
        raise BadRefName(short, why)
    return short


def candidates(short: str) -> list[str]:
    """Full names to try for ``short``, in git's lookup order."""
    return [rule.format(short) for rule in LOOKUP_RULES]
