"""Container commands: ``steve image import|build|ls`` and ``steve janitor``.

The engine is reached at ``DOCKER_HOST`` when set (the library takes it as a
parameter), else at the local unix socket.  ``steve.exec`` (and with it the
``docker`` SDK) is imported inside the commands, so other commands start
without it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from steve.cli.app import cli, frozen_time, pass_state

if TYPE_CHECKING:
    from steve.cli.app import Context
    from steve.exec import Engine, ImageRecord


def engine() -> Engine:
    """The engine at ``DOCKER_HOST`` (or the local socket)."""
    from steve.exec import connect

    return connect(os.environ.get("DOCKER_HOST") or None)


def _record_json(r: ImageRecord) -> dict[str, object]:
    return {
        "id": r.id,
        "tags": list(r.tags),
        "diff_ids": list(r.diff_ids),
        "size": r.size,
        "created": r.created,
    }


@cli.group("image")
def image() -> None:
    """Local container images, made offline and pinned by id (no registry)."""


@image.command("import")
@click.argument("tarball", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", "-n", required=True, help="Image name[:tag] to give the import.")
def image_import(tarball: Path, name: str) -> None:
    """Import a rootfs TARBALL as an image; print its id (sha256:...)."""
    with engine() as eng:
        record = eng.images.import_tarball(tarball, name)
    click.echo(record.id)


@image.command("build")
@click.argument("context", type=click.Path(file_okay=False, path_type=Path))
@click.option("--tag", "-t", default=None, help="Name[:tag] for the built image.")
@click.option(
    "--no-sign", is_flag=True, help="Do not sign the image or record its SBOM (see below)."
)
@pass_state
def image_build(state: Context, context: Path, tag: str | None, no_sign: bool) -> None:
    """Build the Dockerfile in CONTEXT offline; print the image id (sha256:...).

    Inside a repository, with a signing identity usable without a prompt
    (STEVE_SIGNING_PASSPHRASE), the image id is signed and its SBOM recorded in the
    repository (refs/tags/trust/images/, refs/tags/trust/sbom/images/); otherwise a
    warning says why it was not."""
    with engine() as eng:
        record = eng.images.build(context, tag)
    if not no_sign:
        _sign_built(state, record, context)
    click.echo(record.id)


def _sign_built(state: Context, record: ImageRecord, context: Path) -> None:
    from steve.cli.identity import load_signing_key
    from steve.errors import SteveError
    from steve.porcelain.attest import record_image_sbom
    from steve.porcelain.trust import sign_image

    try:
        key = load_signing_key(interactive=False)
        repo = state.repo()
    except SteveError as exc:
        click.echo(f"steve: warning: image not signed: {exc.message} ({exc.detail})", err=True)
        return
    now, _ = frozen_time()
    sign_image(repo, record.id, [key], now=now)
    record_image_sbom(repo, record.id, record.tags, context, now=now)
    click.echo(f"signed image {record.id} with {key.public_key.hex()}", err=True)


@image.command("sign")
@click.argument("image_id", metavar="IMAGE")
@click.option(
    "--identity",
    "identities",
    multiple=True,
    metavar="NAME",
    help="Also sign with the named identity (co-signing; repeatable).",
)
@pass_state
def image_sign(state: Context, image_id: str, identities: tuple[str, ...]) -> None:
    """Sign the local image IMAGE (sha256:<64 hex>, e.g. one built outside STEVE) in
    this repository; an image signed before keeps its signatures.  Prints the record id."""
    from steve.cli.identity import load_signing_keys
    from steve.porcelain.trust import sign_image

    with engine() as eng:
        record = eng.images.get(image_id)
    repo = state.repo()
    keys = load_signing_keys(identities)
    now, _ = frozen_time()
    click.echo(sign_image(repo, record.id, keys, now=now).hex)


@image.command("ls")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image.")
def image_ls(as_json: bool) -> None:
    """List local images: id, size, creation time, tags."""
    with engine() as eng:
        records = eng.images.list()
    for r in records:
        if as_json:
            click.echo(json.dumps(_record_json(r), sort_keys=True))
        else:
            tags = ",".join(r.tags) or "-"
            click.echo(f"{r.id}  {r.size:>10}  {r.created[:19]}  {tags}")


@cli.command("janitor")
@click.option("--all", "all_", is_flag=True, help="Remove every STEVE container, not only orphans.")
@click.option("--dry-run", "-n", is_flag=True, help="Only list what would be removed.")
def janitor(all_: bool, dry_run: bool) -> None:
    """Remove containers and volumes left by STEVE processes that are gone."""
    with engine() as eng:
        report = eng.janitor.clean(all=all_, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for item in report.removed:
        click.echo(
            f"{verb} {item.kind} {item.id[:12]} run={item.run or '-'} "
            f"step={item.step or '-'} owner={item.owner_pid}@{item.owner_host or '-'}"
        )
    kept = len(report.found) - len(report.removed)
    click.echo(f"{verb} {len(report.removed)}, kept {kept} (owner still running)", err=True)
