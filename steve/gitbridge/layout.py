"""What an exported commit looks like: pure functions, no dulwich.

Each manifest becomes one git commit whose tree holds

``manifest.json``
    the manifest as ``steve cat-manifest`` prints it (the same function
    renders both, :func:`manifest_json`);
``manifest.cbor``
    the exact stored bytes (BLAKE3 of them is the manifest id);
attachments
    every tree and blob the body references (the envelope's ``links``), at
    the path of the field that holds its id: ``outputs/<name>``,
    ``logs/<i>``, ``input_trees/<i>``, ``sources/<i>/content`` ...
    (:func:`attachments`).  Manifests and tags a body references are not
    attachments: they are commits and tags of their own.

The commit message is the one-line summary plus the trailers
``Steve-Object: <id>`` and ``Steve-Kind: <kind>``; author and committer are
the fixed :data:`EXPORT_IDENTITY` with the manifest's own time and offset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring as _quote
from typing import Any

from steve.errors import NotRepresentable
from steve.objects.frozen import FrozenManifest
from steve.objects.model import Manifest, ObjectType
from steve.objects.oid import OID_HEX, ObjectId
from steve.objects.signatures import SignatureEntry
from steve.objects.summary import summarize

EXPORT_IDENTITY = b"STEVE <steve@localhost>"
MANIFEST_JSON = "manifest.json"
MANIFEST_CBOR = "manifest.cbor"
RESERVED = frozenset({MANIFEST_JSON, MANIFEST_CBOR})
TRAILER_OBJECT = "Steve-Object"
TRAILER_KIND = "Steve-Kind"
GIT_MAP = "git-map"  # derived-data space: STEVE id (32 bytes) -> git id (20 bytes)

_HEX_ID = re.compile(r"[0-9a-f]{64}")
_TRAILERS = re.compile(
    rf"\n\n{TRAILER_OBJECT}: ([0-9a-f]{{{OID_HEX}}})\n{TRAILER_KIND}: ([a-z_]+)\n\Z"
)


def manifest_json(oid: ObjectId, manifest: Manifest) -> bytes:
    """``manifest.json``: byte for byte what ``steve cat-manifest ID`` prints
    (:meth:`FrozenManifest.to_dict` as ``json.dumps(value, indent=2,
    sort_keys=True, ensure_ascii=False)`` plus a newline)."""
    value = FrozenManifest(oid, manifest).to_dict()
    try:
        text = dumps_indented(value)
    except (TypeError, ValueError) as exc:
        raise NotRepresentable(oid.hex, f"the manifest body is not JSON: {exc}") from exc
    return text.encode() + b"\n"


class _Unusual(Exception):
    """A value the fast path leaves to the json module."""


def dumps_indented(value: Any) -> str:
    """``json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)``, the same
    text, about twice as fast for manifest-shaped values (the json module's C
    encoder is not used when ``indent`` is set).  Anything but str keys, str,
    int, bool, None, lists and dicts goes to ``json.dumps`` itself."""
    parts: list[str] = []
    try:
        _encode(value, "", parts.append)
    except _Unusual:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return "".join(parts)


_CONSTANTS: dict[Any, str] = {True: "true", False: "false", None: "null"}


def _encode(o: Any, indent: str, out: Callable[[str], None]) -> None:
    t = type(o)
    if t is dict:
        if not o:
            out("{}")
            return
        inner = indent + "  "
        sep = "{\n" + inner
        for key in sorted(o):
            if type(key) is not str:
                raise _Unusual
            value = o[key]
            tv = type(value)
            # leaves inline: no call per value
            if tv is str:
                out(sep + _quote(key) + ": " + _quote(value))
            elif tv is int:
                out(sep + _quote(key) + ": " + int.__repr__(value))
            elif tv is dict or tv is list:
                out(sep + _quote(key) + ": ")
                _encode(value, inner, out)
            elif value is True or value is False or value is None:
                out(sep + _quote(key) + ": " + _CONSTANTS[value])
            else:
                raise _Unusual
            sep = ",\n" + inner
        out("\n" + indent + "}")
    elif t is list:
        if not o:
            out("[]")
            return
        inner = indent + "  "
        sep = "[\n" + inner
        for item in o:
            out(sep)
            _encode(item, inner, out)
            sep = ",\n" + inner
        out("\n" + indent + "]")
    elif t is str:
        out(_quote(o))
    elif t is int:
        out(int.__repr__(o))
    elif o is True or o is False or o is None:
        out(_CONSTANTS[o])
    else:
        raise _Unusual


def trailers(oid: ObjectId, kind: ObjectType) -> str:
    return f"\n\n{TRAILER_OBJECT}: {oid.hex}\n{TRAILER_KIND}: {kind.value}\n"


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def commit_message(oid: ObjectId, manifest: Manifest) -> bytes:
    """The one-line summary (control characters, which git refuses or would break
    the line on, shown as U+FFFD), a blank line, the trailers."""
    subject = _CONTROL.sub("\ufffd", summarize(manifest.kind, manifest.body))
    return ((subject or manifest.kind.value) + trailers(oid, manifest.kind)).encode()


SIGNATURES_BEGIN = "-----BEGIN STEVE SIGNATURES-----"
SIGNATURES_END = "-----END STEVE SIGNATURES-----"


def tag_message(
    oid: ObjectId, message: str, signatures: Sequence[SignatureEntry] = ()
) -> bytes:
    """An annotated tag's message: the STEVE message, the signature block of a signed
    tag (one ``ed25519 <key hex> <signature hex>`` line per signature), the trailers."""
    if "\x00" in message:
        raise NotRepresentable(oid.hex, "a tag message with a NUL character")
    block = ""
    if signatures:
        lines = "".join(f"ed25519 {e.key.hex()} {e.sig.hex()}\n" for e in signatures)
        block = f"\n{SIGNATURES_BEGIN}\n{lines}{SIGNATURES_END}"
    return (message + block + trailers(oid, ObjectType.TAG)).encode()


def split_signatures(body: str) -> tuple[str, tuple[SignatureEntry, ...]] | None:
    """(message, signatures) of a tag message body that ends in a signature block
    (:func:`tag_message`), or None."""
    start = body.rfind(f"\n{SIGNATURES_BEGIN}\n")
    if start < 0 or not body.endswith(SIGNATURES_END):
        return None
    lines = body[start + len(SIGNATURES_BEGIN) + 2 : -len(SIGNATURES_END)].splitlines()
    entries = []
    for line in lines:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "ed25519":
            return None
        try:
            entries.append(SignatureEntry(bytes.fromhex(parts[1]), bytes.fromhex(parts[2])))
        except ValueError:
            return None
    return body[:start], tuple(entries)


@dataclass(frozen=True, slots=True)
class Trailers:
    oid: ObjectId
    kind: str
    body: bytes  # the message without the trailers


def parse_trailers(message: bytes) -> Trailers | None:
    """The ``Steve-Object`` / ``Steve-Kind`` trailers ending ``message`` (None if absent)."""
    try:
        text = message.decode()
    except UnicodeDecodeError:
        return None
    m = _TRAILERS.search(text)
    if m is None:
        return None
    return Trailers(ObjectId.from_hex(m.group(1)), m.group(2), text[: m.start()].encode())


# --- attachments -----------------------------------------------------------------------


_QUOTED = re.compile("[%/\x00-\x1f\x7f]")


def quote_component(name: str, top: bool = False) -> str:
    """``name`` as one git path component: ``%``, ``/``, NUL and control characters
    percent-encoded, and a leading ``.`` (``.git``, ``..``) too; injective."""
    if name and name[0] != "." and _QUOTED.search(name) is None:  # the common case
        return name.replace(".", "%2E") if top and name in RESERVED else name
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch == "%" or ch == "/" or ord(ch) < 0x20 or ch == "\x7f" or (i == 0 and ch == "."):
            out.extend(f"%{b:02X}" for b in ch.encode())
        else:
            out.append(ch)
    text = "".join(out)
    if not text:
        return "%"
    if top and text in RESERVED:
        return text.replace(".", "%2E")
    return text


# --- tree entry names git refuses ------------------------------------------------------

ESCAPE_PREFIX = "steve-escaped~"
# code points HFS+ ignores in names (git's is_hfs_dotgit drops them before comparing)
_HFS_IGNORABLE = re.compile("[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")


def git_refuses(name: str, link: bool) -> bool:
    """Whether git refuses a tree entry ``name`` (``link``: a symlink): ``.git`` in
    any case, with the characters HFS+ ignores, with NTFS's trailing dots and
    spaces or as its short name ``git~1``; a ``.gitmodules`` symlink likewise."""
    folded = _HFS_IGNORABLE.sub("", name).lower().rstrip(" .")
    return folded in (".git", "git~1") or (link and folded in (".gitmodules", "gitmod~1"))


def escape_entry_name(name: str, link: bool) -> str:
    """A STEVE tree entry name as the exported git tree holds it: a name git refuses,
    or one that already starts with :data:`ESCAPE_PREFIX`, gets the prefix; every
    other name is itself.  Injective; :func:`unescape_entry_name` inverts it."""
    if git_refuses(name, link) or name.startswith(ESCAPE_PREFIX):
        return ESCAPE_PREFIX + name
    return name


def unescape_entry_name(name: str, link: bool) -> str:
    """The STEVE name of git tree entry ``name``; refuses (NotRepresentable) what
    :func:`escape_entry_name` never writes, so each STEVE tree has one git form."""
    if name.startswith(ESCAPE_PREFIX):
        original = name[len(ESCAPE_PREFIX) :]
        if git_refuses(original, link) or original.startswith(ESCAPE_PREFIX):
            return original
        raise NotRepresentable(name, f"escaped with {ESCAPE_PREFIX!r} although it need not be")
    if git_refuses(name, link):
        raise NotRepresentable(name, "a tree entry name git refuses (an export escapes it)")
    return name


def attachments(manifest: Manifest) -> Iterator[tuple[tuple[str, ...], ObjectId]]:
    """(path components, id) of every linked id in the body, in body order.

    Only ids in the envelope's ``links`` count (so a digest that merely
    looks like an id is not one); the caller drops manifests and tags.
    """
    if not manifest.links:
        return
    links = frozenset(link.hex for link in manifest.links)
    found: list[tuple[list[str | int], str]] = []
    _walk(manifest.body, [], links, found)
    for raw, value in found:
        # quoted only here: a body has many keys and few attachments
        path = tuple(
            quote_component(part, i == 0) if type(part) is str else str(part)
            for i, part in enumerate(raw)
        )
        yield path, ObjectId.from_hex(value)


def _walk(
    value: Any,
    path: list[str | int],
    links: frozenset[str],
    out: list[tuple[list[str | int], str]],
) -> None:
    """Append (raw path: dict keys as str, list indices as int; the id) to ``out``."""
    if isinstance(value, dict):
        for key in sorted(value):
            if isinstance(key, str):
                item = value[key]
                if isinstance(item, (dict, list)):
                    path.append(key)
                    _walk(item, path, links, out)
                    path.pop()
                elif isinstance(item, str) and item in links and _HEX_ID.fullmatch(item):
                    out.append(([*path, key], item))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)):
                path.append(i)
                _walk(item, path, links, out)
                path.pop()
            elif isinstance(item, str) and item in links and _HEX_ID.fullmatch(item):
                out.append(([*path, i], item))


# --- refs ----------------------------------------------------------------------------------


def git_ref_name(steve_ref: str) -> str:
    """The git ref a STEVE ref exports to: branches and tags keep their names, every
    other ``refs/X`` becomes the branch ``refs/heads/X`` (``refs/runs/R/plan`` ->
    ``refs/heads/runs/R/plan``), so git hosts show it."""
    if steve_ref.startswith(("refs/heads/", "refs/tags/")):
        return steve_ref
    if steve_ref.startswith("refs/"):
        return "refs/heads/" + steve_ref[len("refs/") :]
    raise NotRepresentable(steve_ref, "only refs under refs/ are exported")
