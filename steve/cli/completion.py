"""Shell completion through click's own protocol (``_STEVE_COMPLETE=bash_complete``
and friends; ``steve completion SHELL`` prints the script).

Commands and options complete by click.  Arguments and options named in
:data:`COMPLETERS` get values from the repository: refs (and ``HEAD``), run ids
and names, manifest kinds, settings, help topics.  The repository is opened only
when that needs no prompt (a key cached by ``steve unlock``, or
``STEVE_KEY_FILE`` / ``STEVE_PASSPHRASE``); otherwise, or on any error, the
completion is simply empty: a Tab key never asks for a passphrase or prints an
error.  :func:`attach` is called by the group when it loads a command module
during completion only, so ordinary commands never pay for this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem

from steve.errors import SteveError
from steve.objects.model import MANIFEST_TYPES

if TYPE_CHECKING:
    from steve.repo import Repo

MANIFEST_KINDS = tuple(t.value for t in MANIFEST_TYPES)

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _root_dir(ctx: click.Context) -> Path | None:
    from steve.repo import find_repository

    given = ctx.find_root().params.get("repo_dir")
    if given is not None:
        return Path(given)
    try:
        return find_repository(Path.cwd())
    except SteveError:
        return None


def open_quietly(ctx: click.Context) -> Repo | None:
    """The repository, if it opens without a prompt; None otherwise (never raises)."""
    from steve.repo import Repo
    from steve.store import keycache
    from steve.store.kdf import key_matches

    root = _root_dir(ctx)
    if root is None:
        return None
    try:
        config = Repo.read_config(root)
        key = keycache.cached_key(config.repository_id)
        if key is not None and key_matches(key, config.key_check):
            return Repo.open(root, key=key, busy_timeout=1.0)
        secret = None
        key_file = os.environ.get("STEVE_KEY_FILE")
        if key_file:
            with Path(key_file).open("rb") as fh:
                secret = fh.readline().rstrip(b"\r\n").decode("utf-8")
        secret = secret or os.environ.get("STEVE_PASSPHRASE")
        if not secret:
            return None
        return Repo.open(root, passphrase=secret, busy_timeout=1.0)
    except (SteveError, OSError, UnicodeDecodeError):
        return None


def _matching(values: list[str], incomplete: str) -> list[CompletionItem]:
    seen: dict[str, None] = {}
    for v in values:
        if v.startswith(incomplete):
            seen.setdefault(v, None)
    return [CompletionItem(v) for v in seen]


def complete_refs(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    repo = open_quietly(ctx)
    if repo is None:
        return []
    try:
        names = ["HEAD"]
        for ref in repo.list_refs():
            names.append(ref.name)
            for prefix in ("refs/heads/", "refs/tags/"):
                if ref.name.startswith(prefix):
                    names.append(ref.name.removeprefix(prefix))
    except SteveError:
        return []
    finally:
        repo.close()
    return _matching(names, incomplete)


def complete_runs(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    repo = open_quietly(ctx)
    if repo is None:
        return []
    try:
        runs = repo.list_runs()
    except SteveError:
        return []
    finally:
        repo.close()
    values = [r.id for r in runs] + [r.name for r in runs if r.name]
    return _matching(values, incomplete)


def complete_kinds(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return _matching(list(MANIFEST_KINDS), incomplete)


def complete_settings(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    from steve.config import HOMELY_DEFAULTS

    return _matching([f"homely.{k}" for k in HOMELY_DEFAULTS], incomplete)


def complete_topics(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    from steve.cli.app import COMMAND_MODULES
    from steve.messages import error_classes

    if incomplete[:1].isupper() or incomplete.upper().startswith("STEVE-"):
        return _matching(sorted(error_classes()), incomplete.upper())
    return _matching(sorted(COMMAND_MODULES), incomplete)


COMPLETERS: dict[str, Completer] = {
    "rev": complete_refs,
    "revs": complete_refs,
    "old": complete_refs,
    "new": complete_refs,
    "ref": complete_refs,
    "receipt": complete_refs,
    "patterns": complete_refs,
    "run": complete_runs,
    "run_spec": complete_runs,
    "kind": complete_kinds,
    "kinds": complete_kinds,
    "key": complete_settings,
    "topic": complete_topics,
}
"""Parameter name -> where its values come from."""

NOT_COMPLETED = {("import-git", "rev"), ("verify-git", "rev"), ("key", "name")}
"""(command, parameter) pairs whose values are not STEVE's (git revisions)."""


def attach(command: click.Command, name: str | None = None) -> None:
    """Give ``command`` (and its subcommands) the completers of :data:`COMPLETERS`."""
    name = name or command.name or ""
    if isinstance(command, click.Group):
        for sub_name, sub in command.commands.items():
            attach(sub, sub_name)
    for param in command.params:
        completer = COMPLETERS.get(param.name or "")
        if completer is None or (name, param.name) in NOT_COMPLETED:
            continue
        if isinstance(param.type, click.Choice) or (
            isinstance(param, click.Option) and param.is_flag
        ):
            continue  # click completes choices itself
        param._custom_shell_complete = completer
