"""Reading objects back for people: ``cat-manifest`` and ``steve cat`` (like git show).

:func:`read_manifest` returns exactly what was frozen (envelope + body);
the ``render_*`` functions turn objects into text and never print.
"""

from __future__ import annotations

from typing import Any

import yaml

from steve.errors import WrongObjectType
from steve.objects.frozen import FrozenManifest
from steve.objects.model import Manifest, Tag, Tree
from steve.objects.oid import ObjectId
from steve.porcelain.escape import escape_text
from steve.porcelain.history import format_date, summarize
from steve.repo import Repo

__all__ = ["FrozenManifest", "read_manifest", "render_manifest", "to_yaml"]


def read_manifest(repo: Repo, rev: str | ObjectId) -> FrozenManifest:
    """The manifest named by ``rev`` (tags are peeled)."""
    oid = rev if isinstance(rev, ObjectId) else repo.rev_parse(rev)
    obj = repo.read_object(oid)
    hops = 0
    while isinstance(obj, Tag) and hops < 64:
        oid, obj, hops = obj.object, repo.read_object(obj.object), hops + 1
    if not isinstance(obj, Manifest):
        raise WrongObjectType(oid.hex, "manifest", obj.type.value)
    return FrozenManifest(oid, obj)


def to_yaml(value: Any, *, sort_keys: bool = False) -> str:
    """Block-style YAML, keys in stored (canonical) order unless sorted, Unicode kept."""
    text: str = yaml.safe_dump(value, sort_keys=sort_keys, allow_unicode=True, width=100)
    return text


def render_manifest(fm: FrozenManifest) -> str:
    """Text for people (control and bidi characters escaped, see escape_text)."""
    m = fm.manifest
    lines = [f"{m.kind.value} {fm.oid.hex} (schema v{m.version})"]
    for p in m.parents:
        lines.append(f"Parent: {p.hex}")
    if m.body.get("amends"):
        lines.append(f"Amends: {escape_text(str(m.body['amends']), one_line=True)}")
    lines.append(f"Date:   {format_date(m.time, m.tz)}")
    lines.append(f"Links:  {len(m.links)} object(s)")
    lines.append("")
    lines.append(f"    {escape_text(summarize(m.kind, m.body), one_line=True)}")
    lines.append("")
    lines.append(escape_text(to_yaml(m.body, sort_keys=True).rstrip("\n")))
    return "\n".join(lines) + "\n"


def render_tree(tree: Tree) -> str:
    return "".join(
        f"{e.mode.git} {e.mode.object_type.value} {e.oid.hex}\t"
        f"{escape_text(e.name, one_line=True)}\n"
        for e in tree.entries
    )


def render_tag(oid: ObjectId, tag: Tag) -> str:
    return (
        f"tag {escape_text(tag.name, one_line=True)}\n"
        f"Tagger: {escape_text(str(tag.tagger), one_line=True)}\n"
        f"Date:   {format_date(tag.time, tag.tz)}\n"
        f"Object: {tag.object_type.value} {tag.object.hex}\n\n"
        f"{escape_text(tag.message.rstrip())}\n"
    )
