"""STEVE's words: one catalogue of user-facing strings, each with an id.

Command code never spells a sentence; it names one: ``msg("freeze.done",
kind="design", id=oid.short())``.  The sentences live in data files shipped
with the package, one directory per locale (``steve/messages/en/``):

``messages.toml``  the porcelain's lines: ``[section] key = "template"``; a
                   key ending in ``.friendly`` is a homely line shown only on a
                   terminal and never with ``--quiet`` (see docs/messages.md),
                   and it always has a factual twin (the same id without the
                   suffix, ``.fact``)
``errors.toml``    one line per error code: the human template of the error
                   (``say``), the one suggested next command (``try``), and the
                   longer text of ``steve help CODE`` (``meaning``)

Templates use :meth:`str.format` fields named after the facts the caller
passes.  A translation is a new directory (``steve/messages/fr/``) holding
the same ids: a missing id falls back to English, and ``try`` commands are
never translated (they are commands).  English is the only locale today;
:func:`set_locale` is how the CLI would choose another.

This module is data and formatting only: it never prints and never reads the
environment.
"""

from __future__ import annotations

import shlex
import string
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steve.errors import SteveError

DEFAULT_LOCALE = "en"
_locale = DEFAULT_LOCALE


def set_locale(locale: str) -> None:
    """Choose the locale of later :func:`msg` calls (a directory under steve/messages)."""
    global _locale
    _locale = locale


@cache
def _load(locale: str, name: str) -> dict[str, Any]:
    path = Path(__file__).parent / locale / f"{name}.toml"  # package data, beside this file
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return tomllib.loads(text)


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


@cache
def messages(locale: str = DEFAULT_LOCALE) -> dict[str, str]:
    """Every message id -> its template in ``locale`` (English where it has none)."""
    found = _flatten(_load(DEFAULT_LOCALE, "messages"))
    if locale != DEFAULT_LOCALE:
        found.update(_flatten(_load(locale, "messages")))
    return found


class _Facts(dict[str, Any]):
    """Format fields: a fact the caller did not pass stays visible as ``{name}``."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fields(template: str) -> set[str]:
    """The names of the format fields ``template`` uses."""
    return {
        name.split(".")[0].split("[")[0]
        for _, name, _, _ in string.Formatter().parse(template)
        if name
    }


def msg(message_id: str, **facts: object) -> str:
    """The message ``message_id`` with ``facts`` filled in.  An unknown id raises
    KeyError: every id a command uses is in the catalogue (tests/messages checks)."""
    template = messages(_locale)[message_id]
    return template.format_map(_Facts(facts))


def friendly_twin(message_id: str) -> str:
    """The factual id a friendly id (``x.friendly``) is paired with (``x.fact``)."""
    return message_id.removesuffix(".friendly") + ".fact"


# --- errors -----------------------------------------------------------------------------


def error_classes() -> dict[str, type[SteveError]]:
    """Every SteveError class by code (the class nearest the root for a shared code)."""
    from steve.errors import SteveError

    found: dict[str, type[SteveError]] = {}
    todo: list[type[SteveError]] = [SteveError]
    while todo:
        cls = todo.pop(0)
        found.setdefault(cls.code, cls)
        todo.extend(cls.__subclasses__())
    return found


@dataclass(frozen=True, slots=True)
class ErrorEntry:
    """The catalogue's entry for one error code."""

    code: str
    say: str
    """The human template (format fields: the error's attributes, ``message``, ``detail``)."""
    try_: str
    """The one suggested next command (a real ``steve`` command; fields as ``say``)."""
    meaning: str = ""
    """What the error means and its usual causes, for ``steve help CODE``."""


@cache
def error_catalogue(locale: str = DEFAULT_LOCALE) -> dict[str, ErrorEntry]:
    """Every catalogued error code -> its entry (``try`` always from English)."""
    base = _load(DEFAULT_LOCALE, "errors")
    local = _load(locale, "errors") if locale != DEFAULT_LOCALE else {}
    out: dict[str, ErrorEntry] = {}
    for code, entry in base.items():
        over = local.get(code, {})
        out[code] = ErrorEntry(
            code,
            str(over.get("say", entry.get("say", "{message}"))),
            str(entry["try"]),
            str(over.get("meaning", entry.get("meaning", ""))),
        )
    return out


def error_facts(err: SteveError) -> dict[str, str]:
    """The facts an error template may name: its public attributes (lists joined with
    ", "), ``message``, ``detail`` and ``code``."""
    facts: dict[str, str] = {}
    for key, value in vars(err).items():
        if key.startswith("_"):
            continue
        if isinstance(value, list | tuple):
            facts[key] = ", ".join(str(v) for v in value)
        elif value is not None:
            facts[key] = str(value)
    facts["message"] = err.message
    facts["detail"] = err.detail
    facts["code"] = err.code
    return facts


@dataclass(frozen=True, slots=True)
class RenderedError:
    say: str
    try_: str | None


def render_error(err: SteveError) -> RenderedError:
    """The error's human line and suggested command, facts filled in.  A template
    naming a fact this instance lacks falls back to the error's own message (and
    the command to its form without the fact's argument is not guessed: None)."""
    entry = error_catalogue(_locale).get(err.code)
    if entry is None:
        return RenderedError(err.message, None)
    facts = error_facts(err)
    try:
        say = entry.say.format_map(facts)
    except (KeyError, IndexError, ValueError):
        say = err.message
    quoted = {k: shlex.quote(v) for k, v in facts.items()}
    try:
        suggestion: str | None = entry.try_.format_map(quoted)
    except (KeyError, IndexError, ValueError):
        suggestion = None
    return RenderedError(say, suggestion)
