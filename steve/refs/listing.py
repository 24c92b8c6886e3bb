"""Listing refs the way ``git show-ref`` and ``git for-each-ref`` do.

The CLI prints; this module selects and formats:

- :func:`show_ref_matches`: git show-ref's patterns (a pattern matches whole
  trailing path components: ``main`` matches ``refs/heads/main``);
- :func:`for_each_ref_matches`: git for-each-ref's patterns (a pattern
  matches from the start up to a slash, or as a glob);
- :class:`RefFormat`: the ``--format`` engine (``%(refname)``,
  ``%(refname:short)``, ``%(objectname)``, ``%(objectname:short)``,
  ``%(objecttype)``, ``%(symref)``, ``%%`` and ``%xx`` hex escapes),
  checked when compiled so a bad field fails even when no ref matches;
- :func:`for_each_ref`: the selected refs as :class:`RefRow` values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from steve.errors import InvalidInput
from steve.objects.oid import ObjectId
from steve.refs.refs import Ref

DEFAULT_FORMAT = "%(objectname) %(objecttype)\t%(refname)"
FIELDS = ("refname", "objectname", "objecttype", "symref")


@dataclass(frozen=True, slots=True)
class RefRow:
    """One listed ref: its full name, the id it points at, that object's type, and
    the ref it is an alias of (``symref``) when it is symbolic."""

    name: str
    target: ObjectId
    type: str
    symref: str | None = None

    @property
    def short(self) -> str:
        return short_name(self.name)


def short_name(name: str) -> str:
    """git's ``%(refname:short)``: the name without ``refs/heads/``, ``refs/tags/``, ..."""
    for prefix in ("refs/heads/", "refs/tags/", "refs/remotes/", "refs/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def show_ref_matches(name: str, patterns: Sequence[str]) -> bool:
    """git show-ref: a pattern matches the whole name or whole trailing components."""
    if not patterns:
        return True
    return any(
        name == p or name.endswith("/" + p) or name.startswith(p.rstrip("/") + "/")
        for p in patterns
    )


_GLOB_CHARS = frozenset("*?[")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as git's wildmatch with WM_PATHNAME: ``*`` and ``?`` never cross ``/``."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
                continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def for_each_ref_matches(name: str, patterns: Sequence[str]) -> bool:
    """git for-each-ref: a pattern matches the name itself, a prefix of it that ends
    at a slash (``refs/heads`` and ``refs/heads/`` match ``refs/heads/main``;
    ``refs/heads/ma`` does not), or, holding ``*``, ``?`` or ``[``, as a glob
    whose wildcards stay within one path component."""
    if not patterns:
        return True
    for p in patterns:
        if _GLOB_CHARS & set(p):
            if _glob_regex(p).match(name):
                return True
            continue
        if name == p or (name.startswith(p) and (p.endswith("/") or name[len(p)] == "/")):
            return True
    return False


_FIELD = re.compile(r"%\((\w+)(?::(\w+))?\)|%(%)|%([0-9a-fA-F]{2})")


class RefFormat:
    """A ``for-each-ref --format`` string, checked and compiled once."""

    def __init__(self, fmt: str = DEFAULT_FORMAT) -> None:
        self.fmt = fmt
        for m in _FIELD.finditer(fmt):
            name, mod = m.group(1), m.group(2)
            if name is None:
                continue
            if name not in FIELDS:
                raise InvalidInput(
                    "unknown format field", f"{m.group(0)} (known: {', '.join(FIELDS)})"
                )
            if mod is not None and (mod != "short" or name not in ("refname", "objectname")):
                raise InvalidInput("unknown format modifier", m.group(0))

    def format(self, row: RefRow) -> str:
        def field(m: re.Match[str]) -> str:
            if m.group(3):
                return "%"
            if m.group(4):
                return chr(int(m.group(4), 16))
            name, mod = m.group(1), m.group(2)
            if name == "refname":
                return row.short if mod == "short" else row.name
            if name == "objectname":
                return row.target.short() if mod == "short" else row.target.hex
            if name == "objecttype":
                return row.type
            return row.symref or ""

        return _FIELD.sub(field, self.fmt)


def for_each_ref(
    refs: Iterable[Ref],
    type_of: Callable[[ObjectId], str],
    patterns: Sequence[str] = (),
    count: int | None = None,
) -> Iterator[RefRow]:
    """The refs among ``refs`` that point somewhere and match ``patterns``
    (:func:`for_each_ref_matches`), at most ``count`` of them (None or 0: all, as
    in git); ``type_of`` names the type of the object a ref points at
    (``repo.object_type``)."""
    if count is not None and count < 0:
        raise InvalidInput("invalid --count", f"{count} (a count is 0 or more; 0 = all)")
    shown = 0
    for ref in refs:
        if ref.target is None or not for_each_ref_matches(ref.name, patterns):
            continue
        yield RefRow(ref.name, ref.target, type_of(ref.target), ref.symbolic)
        shown += 1
        if count and shown >= count:
            return


def show_ref(
    refs: Iterable[Ref],
    patterns: Sequence[str] = (),
    *,
    heads: bool = False,
    tags: bool = False,
    head: Ref | None = None,
) -> list[tuple[str, ObjectId]]:
    """``git show-ref``'s selection as (name, id): ``head`` first when given and born,
    then the refs under ``refs/heads/`` and/or ``refs/tags/`` (both when neither
    is asked) that match ``patterns`` (:func:`show_ref_matches`)."""
    out: list[tuple[str, ObjectId]] = []
    if head is not None and head.target is not None:
        out.append(("HEAD", head.target))
    wanted = tuple(p for p, on in (("refs/heads/", heads), ("refs/tags/", tags)) if on)
    for ref in refs:
        if ref.target is None or (wanted and not ref.name.startswith(wanted)):
            continue
        if show_ref_matches(ref.name, patterns):
            out.append((ref.name, ref.target))
    return out
