"""The signing identity: ``steve identity init`` / ``show``, and where the CLI finds it.

The identity lives outside every repository, in ``STEVE_IDENTITY_DIR``, else
``$XDG_CONFIG_HOME/steve``, else ``~/.config/steve``; its passphrase comes
from ``STEVE_SIGNING_PASSPHRASE`` or a prompt.  See docs/events.md.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from steve.cli.app import cli
from steve.errors import NoSigningIdentity, NoSigningPassphrase, SteveError

if TYPE_CHECKING:
    from steve.events import Checkpoint, EventLog
    from steve.events.signing import SigningKey
    from steve.repo import Repo


def identity_dir() -> Path:
    """The signing identity's directory (never inside a repository)."""
    explicit = os.environ.get("STEVE_IDENTITY_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path.home() / ".config"
    return base / "steve"


def passphrase_variable(name: str | None) -> str:
    """The environment variable holding identity ``name``'s passphrase:
    STEVE_SIGNING_PASSPHRASE, or STEVE_SIGNING_PASSPHRASE_<NAME> for a named identity
    (upper case, ``-`` as ``_``)."""
    if name is None:
        return "STEVE_SIGNING_PASSPHRASE"
    return "STEVE_SIGNING_PASSPHRASE_" + name.upper().replace("-", "_")


def signing_passphrase(
    *, interactive: bool, confirm: bool = False, name: str | None = None
) -> bytes | None:
    """STEVE_SIGNING_PASSPHRASE (or _<NAME> for a named identity), else a hidden prompt
    when ``interactive`` and on a terminal, else None."""
    env = os.environ.get(passphrase_variable(name))
    if env:
        return os.fsencode(env)
    if interactive and sys.stdin.isatty() and sys.stderr.isatty():
        which = "STEVE signing passphrase" + (f" of identity {name}" if name else "")
        value: str = click.prompt(
            which, hide_input=True, confirmation_prompt=confirm, err=True
        )
        if value:
            return os.fsencode(value)
    return None


def load_signing_key(*, interactive: bool, name: str | None = None) -> SigningKey:
    """The identity's signing key (raises NoSigningIdentity, NoSigningPassphrase, ...)."""
    from steve.trust.keys import load_signing_key as load
    from steve.trust.keys import read_identity

    directory = identity_dir()
    read_identity(directory, name)  # NoSigningIdentity before asking for a passphrase
    secret = signing_passphrase(interactive=interactive, name=name)
    if secret is None:
        raise NoSigningPassphrase(f"set {passphrase_variable(name)} or run on a terminal")
    return load(directory, secret, name)


def load_signing_keys(names: Sequence[str], *, interactive: bool = True) -> list[SigningKey]:
    """The default identity's key, then each named co-signer's."""
    keys = [load_signing_key(interactive=interactive)]
    keys += [load_signing_key(interactive=interactive, name=n) for n in dict.fromkeys(names)]
    return keys


def pin_identity(steve_dir: Path) -> bytes | None:
    """Pin the signing identity's public key in the new repository at ``steve_dir``
    (by ``steve init``), when there is an identity; returns the key."""
    from steve.config import RepoConfig
    from steve.events.signing import read_identity
    from steve.repo import CONFIG_NAME

    directory = identity_dir()
    try:
        public = read_identity(directory).public_key
    except SteveError as exc:
        if not isinstance(exc, NoSigningIdentity):
            click.echo(f"steve: warning: signing identity not pinned: {exc}", err=True)
        return None
    path = steve_dir / CONFIG_NAME
    RepoConfig.read(path).with_events_key(public).write(path)
    click.echo(f"pinned the event-log signing key {public.hex()}", err=True)
    return public


class CliSigner:
    """The signer the CLI gives the event log for seals due during a command: loads
    the identity's key without prompting (STEVE_SIGNING_PASSPHRASE), only when a
    seal is due; when it cannot, the seal is made unsigned and the reason kept in
    :attr:`error` for a warning (the command's own change is not failed for it)."""

    def __init__(self) -> None:
        self.error: SteveError | None = None
        self.public_key: bytes | None = None  # set once it gave a key

    def __call__(self) -> SigningKey | None:
        try:
            key = load_signing_key(interactive=False)
        except SteveError as exc:
            self.error = exc
            return None
        self.public_key = key.public_key
        return key


def repository_names(repo: Repo) -> list[str]:
    """What the signer's records are also kept under for ``repo``'s log: its id and
    its KDF salt (changing the salt means re-encrypting the repository)."""
    if repo.config is None:
        return []
    return [
        f"repository-id:{repo.config.repository_id}",
        f"kdf-salt:{repo.config.kdf.salt.hex()}",
    ]


def record_newest_checkpoint(log: EventLog, public_key: bytes, repo: Repo) -> None:
    """Keep the newest checkpoint ``public_key`` signed in the identity directory, so a
    later `steve events verify` here notices if the log no longer holds it."""
    from steve.events.signing import record_checkpoint

    signed = log.signed_checkpoints(public_key)
    if signed:
        checkpoint, message = max(signed, key=lambda s: (s[0].seq, s[0].checkpoint))
        record_checkpoint(
            identity_dir(),
            log.store().log_id,
            message,
            checkpoint.signature,
            repositories=repository_names(repo),
        )


def recorded_witness(log: EventLog, public_key: bytes, repo: Repo) -> list[Checkpoint]:
    """The checkpoints this identity recorded for ``log``, and for the repository when
    it recorded another log id there (a log given a new id), if they verify with
    ``public_key``: a record of another identity says nothing about this key."""
    from steve.events.signing import (
        recorded_checkpoint,
        recorded_for_repositories,
        verify_signature,
    )
    from steve.events.verify import witnessed_checkpoint

    log_id = log.store().log_id
    records: list[tuple[bytes, bytes]] = []
    found = recorded_checkpoint(identity_dir(), log_id)
    if found is not None:
        records.append(found)
    for other, message, signature in recorded_for_repositories(
        identity_dir(), repository_names(repo)
    ):
        if other != log_id and (message, signature) not in records:
            records.append((message, signature))
    return [
        witnessed_checkpoint(message, signature, public_key)
        for message, signature in records
        if verify_signature(public_key, signature, message)
    ]


def trusted_key(
    log: EventLog, repo: Repo, pinned: bytes | None, *, explicit: bool
) -> tuple[bytes | None, list[Checkpoint], bool]:
    """(key to verify with, the signer's records it must still find, whether the key
    came from this identity rather than the config).

    ``pinned`` is the key given on the command line (``explicit``) or pinned in
    ``.steve/config``, a plain file: when it pins nothing but this identity signed
    this repository's log, the identity's key is used, and when it pins another key,
    CheckpointInvalid; so editing the config does not silence the signer's record."""
    from steve.errors import CheckpointInvalid
    from steve.events.signing import read_identity

    own_key: bytes | None = None
    if not explicit:
        try:
            own_key = read_identity(identity_dir()).public_key
        except SteveError:
            own_key = None
    own = [] if own_key is None else recorded_witness(log, own_key, repo)
    if own_key is None or not own:
        kept = [] if pinned is None else recorded_witness(log, pinned, repo)
        return pinned, kept, False
    if pinned is None:
        return own_key, own, True
    if pinned != own_key:
        newest = max(cp.seq for cp in own)
        raise CheckpointInvalid(
            ".steve/config [events] public_key",
            f"pins {pinned.hex()}, but this identity ({own_key.hex()}) signed this log up "
            f"to seq {newest}; if the pinned key was changed on purpose, remove this "
            f"identity's records in {identity_dir() / 'checkpoints'}",
        )
    return pinned, own, False


@cli.group("identity")
def identity_group() -> None:
    """The signing identity that signs event-log checkpoints (kept outside repositories)."""


@identity_group.command("init")
@click.option("--json", "as_json", is_flag=True, help="Print the path and public key as JSON.")
def identity_init(as_json: bool) -> None:
    """Create a signing key in the identity directory, encrypted with its own passphrase.

    Pin its public key in a repository with `steve events pin-key`.
    """
    from steve.events.signing import create_identity

    secret = signing_passphrase(interactive=True, confirm=True)
    if secret is None:
        raise NoSigningPassphrase()
    info = create_identity(identity_dir(), secret)
    _show(info.path, info.public_key, as_json)


@identity_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the path and public key as JSON.")
def identity_show(as_json: bool) -> None:
    """Print the signing identity's public key (no passphrase needed)."""
    from steve.events.signing import read_identity

    info = read_identity(identity_dir())
    _show(info.path, info.public_key, as_json)


def _show(path: Path, public_key: bytes, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"path": str(path), "public_key": public_key.hex()}, sort_keys=True))
    else:
        click.echo(public_key.hex())
        click.echo(f"signing key in {path}", err=True)
