"""Trust commands: ``steve key``, ``verify-tag``, ``attest``, ``verify-attestation``,
``supersede`` and ``supersessions`` (docs/trust.md).

Signing keys come from the identity directory (steve.cli.identity): the default
identity always signs; ``--identity NAME`` adds a co-signer whose passphrase is in
``STEVE_SIGNING_PASSPHRASE_<NAME>`` (or a prompt).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from steve.cli.app import cli, frozen_time, pass_state
from steve.cli.homely import say
from steve.cli.identity import (
    identity_dir,
    load_signing_key,
    load_signing_keys,
    record_newest_checkpoint,
    signing_passphrase,
)
from steve.errors import BadPublicKey, NotARepository, NoTrustRoot
from steve.messages import msg

if TYPE_CHECKING:
    from steve.cli.app import Context
    from steve.repo import Repo
    from steve.trust.records import Keyring, Verdict

IDENTITY_OPTION = click.option(
    "--identity",
    "identities",
    multiple=True,
    metavar="NAME",
    help="Also sign with the named identity (co-signing; repeatable).",
)
KEY_OPTION = click.option(
    "--key",
    "key_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PUB.pem",
    help="Trust this public key (PEM or hex; repeatable: each must have signed).",
)


def read_public_keys(paths: Sequence[Path]) -> list[bytes]:
    """The raw keys in ``paths`` (PEM SubjectPublicKeyInfo or 64 hex digits)."""
    from steve.trust.keys import parse_public_pem

    keys = []
    for path in paths:
        try:
            keys.append(parse_public_pem(path.read_bytes()))
        except OSError as exc:
            raise BadPublicKey(str(path), exc.strerror or str(exc)) from exc
        except ValueError as exc:
            raise BadPublicKey(str(path), str(exc)) from exc
    return keys


def repo_keyring(repo: Repo, keys: Sequence[bytes]) -> Keyring:
    """The keyring for ``repo``: ``keys`` if given, else its pinned key (NoTrustRoot)."""
    from steve.porcelain.trust import keyring

    ring = keyring(repo, keys)
    if not ring.roots:
        raise NoTrustRoot("no --key given and no key pinned in .steve/config")
    return ring


def _verdict_json(verdict: Verdict) -> list[dict[str, object]]:
    return [
        {"key": c.key.hex(), "valid": c.valid, "trusted": c.trusted, "why": c.why}
        for c in verdict.checks
    ]


# --- steve key ----------------------------------------------------------------------


@cli.group("key")
def key_group() -> None:
    """Signing identities: show public keys, add co-signers, rotate keys."""


@key_group.command("show")
@click.option("--public", "as_pem", is_flag=True, help="Print the public key as PEM.")
@click.option("--name", default=None, help="A named identity instead of the default one.")
@click.option("--json", "as_json", is_flag=True, help="Print name, path, key and key id.")
def key_show(as_pem: bool, name: str | None, as_json: bool) -> None:
    """Print the identity's public key: hex, or PEM (SubjectPublicKeyInfo) with --public."""
    from steve.trust.keys import keyid, public_pem, read_identity

    info = read_identity(identity_dir(), name)
    if as_json:
        doc = {
            "name": info.name,
            "path": str(info.path),
            "public_key": info.public_key.hex(),
            "keyid": keyid(info.public_key),
            "pem": public_pem(info.public_key),
        }
        click.echo(json.dumps(doc, sort_keys=True))
    elif as_pem:
        click.echo(public_pem(info.public_key), nl=False)
    else:
        click.echo(info.public_key.hex())


@key_group.command("add")
@click.argument("name")
def key_add(name: str) -> None:
    """Create the named identity NAME (a co-signer) in the identity directory; its
    passphrase comes from STEVE_SIGNING_PASSPHRASE_<NAME> or a prompt.  Prints the key."""
    from steve.errors import NoSigningPassphrase
    from steve.trust.keys import check_identity_name, create_identity

    check_identity_name(name)
    secret = signing_passphrase(interactive=True, confirm=True, name=name)
    if secret is None:
        raise NoSigningPassphrase()
    info = create_identity(identity_dir(), secret, name=name)
    click.echo(info.public_key.hex())
    say(None, "identity.created", err=True, name=name, path=info.path)


@key_group.command("list")
def key_list() -> None:
    """List the identities: name (``-`` for the default), public key."""
    from steve.trust.keys import list_identities

    for info in list_identities(identity_dir()):
        click.echo(f"{info.name or '-'} {info.public_key.hex()}")


@key_group.command("rotate")
@click.option("--name", default=None, help="Rotate a named identity instead of the default.")
@click.option("--reason", default="scheduled rotation", show_default=True, help="Why.")
@pass_state
def key_rotate(state: Context, name: str | None, reason: str) -> None:
    """Replace the identity's key with a new one that the old key signs (a rotation
    record, kept in the identity directory and in the current repository, whose
    pinned key moves to the new one).  Old signatures still verify."""
    from steve.repo import CONFIG_NAME, STEVE_DIR
    from steve.store.files import write_private
    from steve.trust.keys import SigningKey, replace_identity
    from steve.trust.records import rotation_record

    try:  # opened first: a repository that cannot be opened fails before anything changes
        repo: Repo | None = state.repo()
    except NotARepository:
        repo = None
    directory = identity_dir()
    old = load_signing_key(interactive=True, name=name)
    secret = signing_passphrase(interactive=True, name=name)
    assert secret is not None  # load_signing_key needed it
    now, _ = frozen_time()
    staged = SigningKey.generate()
    record = rotation_record(old, staged, now, reason)
    rotations = directory / "rotations"
    rotations.mkdir(mode=0o700, exist_ok=True)
    # the record first: the new key is never in place without the old key's word for it
    write_private(rotations / f"{old.public_key.hex()}.cbor.hex", record.encode().hex() + "\n")
    new = replace_identity(directory, old, secret, name=name, staged=staged)
    click.echo(new.public_key.hex())
    if repo is None:
        click.echo(msg("key.rotated_outside.fact"), err=True)
        return
    from steve.porcelain.trust import record_rotation

    record_rotation(repo, record)
    if repo.config is not None and repo.config.events_public_key == old.public_key:
        root = state.root()
        repo.config.with_events_key(new.public_key).write(root / STEVE_DIR / CONFIG_NAME)
        log = state.event_log()
        log.checkpoint(key=new)  # the new key covers the chain the old one signed
        record_newest_checkpoint(log, new.public_key, repo)
        click.echo(msg("key.repinned.fact", key=new.public_key.hex()), err=True)


@key_group.command("record-rotations")
@click.option("--name", default=None, help="A named identity instead of the default.")
@pass_state
def key_record_rotations(state: Context, name: str | None) -> None:
    """Copy the rotation records of the identity directory into this repository and,
    if the repository pins a key the identity rotated away from, pin the identity's
    current key (for repositories other than the one `steve key rotate` ran in)."""
    from steve.errors import IdentityDamaged, MalformedObject
    from steve.porcelain.trust import keyring, record_rotation
    from steve.repo import CONFIG_NAME, STEVE_DIR
    from steve.trust.keys import read_identity
    from steve.trust.records import decode_record

    repo = state.repo()
    directory = identity_dir()
    current = read_identity(directory, name).public_key
    count = 0
    for path in sorted((directory / "rotations").glob("*.cbor.hex")):
        try:
            record = decode_record(bytes.fromhex(path.read_text(encoding="ascii").strip()))
            record_rotation(repo, record)
        except (OSError, ValueError, MalformedObject) as exc:
            raise IdentityDamaged(str(path), f"not a rotation record: {exc}") from exc
        count += 1
    click.echo(msg("key.recorded.fact", count=count), err=True)
    pinned = None if repo.config is None else repo.config.events_public_key
    if pinned is not None and pinned != current and current in keyring(repo).trusted():
        assert repo.config is not None
        repo.config.with_events_key(current).write(state.root() / STEVE_DIR / CONFIG_NAME)
        click.echo(msg("key.repinned_from.fact", key=current.hex(), old=pinned.hex()), err=True)


# --- tags ---------------------------------------------------------------------------


@cli.command("verify-tag")
@click.argument("name")
@KEY_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print every signature's verdict.")
@pass_state
def verify_tag(state: Context, name: str, key_files: tuple[Path, ...], as_json: bool) -> None:
    """Check the signatures of the signed tag NAME against the pinned key (and the
    rotations recorded from it) or the --key files; exit 9 if they do not verify."""
    from steve.porcelain.trust import verify_tag as verify

    repo = state.repo()
    keys = read_public_keys(key_files)
    result = verify(repo, name, repo_keyring(repo, keys), required=keys)
    if as_json:
        doc = {
            "tag": name,
            "id": result.tag.hex,
            "object": result.target.hex,
            "signatures": _verdict_json(result.verdict),
        }
        click.echo(json.dumps(doc, sort_keys=True))
        return
    for c in result.verdict.checks:
        verdict = "good" if c.valid and c.trusted else "untrusted" if c.valid else "bad"
        why = f" ({c.why})" if c.why else ""
        click.echo(msg(f"trust.signature.{verdict}", key=c.key.hex(), why=why))
    click.echo(msg("trust.tag", name=name, tag=result.tag.hex, target=result.target.hex))


# --- attestations -------------------------------------------------------------------


@cli.command("attest")
@click.argument("rev")
@IDENTITY_OPTION
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the DSSE envelope (JSON) to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the ids as JSON.")
@pass_state
def attest(
    state: Context, rev: str, identities: tuple[str, ...], output: Path | None, as_json: bool
) -> None:
    """Sign SLSA provenance for the build receipt or test certificate REV: an in-toto
    Statement in a DSSE envelope, stored as a blob under refs/tags/trust/attestations/.
    Prints the envelope's id."""
    from steve.porcelain.attest import attest as make

    repo = state.repo()
    target = repo.rev_parse(rev)
    keys = load_signing_keys(identities)
    result = make(repo, target, keys)
    del keys
    if output is not None:
        from steve.store.files import write_private

        write_private(output, result.data.decode() + "\n")
    if as_json:
        doc = {
            "subject": result.subject.hex,
            "kind": result.kind.value,
            "envelope": result.envelope.hex,
            "sbom": result.sbom.hex,
            "ref": result.ref,
            "subjects": result.subjects,
        }
        click.echo(json.dumps(doc, sort_keys=True))
    else:
        click.echo(result.envelope.hex)


@cli.command("verify-attestation")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@KEY_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the verified statement as JSON.")
def verify_attestation(file: Path, key_files: tuple[Path, ...], as_json: bool) -> None:
    """Verify the DSSE envelope FILE ('-': standard input) offline with the --key public
    keys (each must have signed); prints the subjects.  Needs no repository."""
    from steve.porcelain.attest import verify_attestation as verify

    if not key_files:
        raise click.UsageError("--key PUB.pem is required (see `steve key show --public`)")
    data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    result = verify(data, read_public_keys(key_files), source=str(file))
    if as_json:
        click.echo(json.dumps(result.statement, sort_keys=True))
        return
    predicate = result.statement.get("predicateType", "")
    keys = ", ".join(k.hex() for k in result.keys)
    click.echo(msg("trust.attestation_verified", predicate=predicate, keys=keys))
    for subject in result.statement.get("subject", []):
        digest = subject.get("digest", {})
        click.echo(f"  {digest.get('sha256', '-')} {digest.get('blake3', '-')} {subject['name']}")


# --- supersession -------------------------------------------------------------------


@cli.command("supersede")
@click.argument("old")
@click.argument("new")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["amendment", "correction", "retraction", "paradigm"]),
    default="amendment",
    show_default=True,
    help="Why NEW replaces OLD.",
)
@click.option("--reason", required=True, help="The reason, in words.")
@IDENTITY_OPTION
@pass_state
def supersede(
    state: Context, old: str, new: str, kind: str, reason: str, identities: tuple[str, ...]
) -> None:
    """Record, signed, that object NEW replaces OLD (the next epoch of OLD's chain);
    prints the record's id."""
    from steve.porcelain.trust import supersede as record
    from steve.trust.records import SupersessionType

    repo = state.repo()
    old_id, new_id = repo.rev_parse(old), repo.rev_parse(new)
    keys = load_signing_keys(identities)
    now, _ = frozen_time()
    oid = record(
        repo, old_id, new_id, kind=SupersessionType(kind), reason=reason, keys=keys, now=now
    )
    click.echo(oid.hex)


@cli.command("supersessions")
@click.argument("rev")
@KEY_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object per link.")
@pass_state
def supersessions(state: Context, rev: str, key_files: tuple[Path, ...], as_json: bool) -> None:
    """Walk and verify the amendment chain that starts at REV: each link's epoch,
    type, reason and signatures (exit 9 if a link does not verify)."""
    from steve.porcelain.trust import supersession_chain

    repo = state.repo()
    keys = read_public_keys(key_files)
    start = repo.rev_parse(rev)
    for link in supersession_chain(repo, start, repo_keyring(repo, keys)):
        s = link.supersession
        if as_json:
            doc = {
                "record": link.record.hex,
                "epoch": s.epoch,
                "supersedes": s.supersedes.hex,
                "by": s.by.hex,
                "type": s.type.value,
                "reason": s.reason,
                "signatures": _verdict_json(link.verdict),
            }
            click.echo(json.dumps(doc, sort_keys=True))
        else:
            signers = ",".join(c.key.hex()[:12] for c in link.verdict.checks if c.valid)
            click.echo(
                f"epoch {s.epoch} {s.supersedes.short()} -> {s.by.short()} "
                f"{s.type.value}: {s.reason} (signed by {signers})"
            )
