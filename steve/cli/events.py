"""Event log commands: ``steve events`` (list, follow, append, verify, seal) and
``steve verify REV`` (closure verification by hash)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from steve.cli.app import INT64_MAX, BlockWriter, Context, cli, is_regular_file, pass_state
from steve.errors import InvalidEvent, InvalidInput

if TYPE_CHECKING:
    from steve.events import Checkpoint, Event


def _human(event: Event) -> str:
    from steve.events import redact
    from steve.events.jsonlog import iso_ms

    parts = [str(event.seq), iso_ms(event.time / 1000), event.level.value, event.event_type]
    if event.run_id:
        parts.append(f"run={event.run_id}")
    if event.correlation_id:
        parts.append(f"corr={event.correlation_id[:12]}")
    if event.actor:
        parts.append(f"actor={event.actor!s}")
    shown = redact(event.payload)
    data = event.payload.get("data")
    if event.event_type == "log.chunk" and isinstance(data, bytes):
        from steve.porcelain.escape import escape_text

        shown["data"] = escape_text(data.decode("utf-8", "replace"))  # step output, as text
    payload = json.dumps(shown, ensure_ascii=False, sort_keys=True)
    parts.append(payload)
    return " ".join(parts)


@cli.group(invoke_without_command=True)
@click.option("--run", "run_id", metavar="RUN", help="Only events of this run id.")
@click.option("--correlation", metavar="ID", help="Only events with this correlation id.")
@click.option(
    "--type", "event_type", metavar="TYPE", help="Only this event type (TYPE.* for a family)."
)
@click.option(
    "--from-seq",
    type=click.IntRange(1, INT64_MAX),
    default=1,
    show_default=True,
    metavar="N",
    help="Start at sequence number N.",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they arrive.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_state
@click.pass_context
def events(
    ctx: click.Context,
    state: Context,
    run_id: str | None,
    correlation: str | None,
    event_type: str | None,
    from_seq: int,
    follow: bool,
    as_json: bool,
) -> None:
    """List the event log in seq order (streamed), or run a subcommand.

    Filters combine (AND).  With --follow, new events are printed as they
    are committed until interrupted.
    """
    if ctx.invoked_subcommand is not None:
        return
    log = state.event_log()
    stream = sys.stdout.buffer
    out = BlockWriter(stream, flush_each=follow or not is_regular_file(stream))
    kwargs: dict[str, Any] = {
        "run_id": run_id,
        "correlation_id": correlation,
        "event_type": event_type,
        "from_seq": from_seq,
    }
    source = log.follow(**kwargs) if follow else log.events(**kwargs)
    for event in source:
        out.line(format_event(event, as_json).encode())
    out.flush()


def format_event(event: Event, as_json: bool) -> str:
    """One event as `steve events` prints it (directly or through steved)."""
    return json.dumps(event.to_json(), sort_keys=True) if as_json else _human(event)


@events.command("append")
@click.option("--type", "event_type", required=True, metavar="TYPE", help="Event type.")
@click.option("--payload", default="{}", show_default=True, metavar="JSON", help="A JSON object.")
@click.option("--run", "run_id", metavar="RUN", help="Run id to file the event under.")
@click.option("--causation", metavar="ID", help="Causation id (what caused this event).")
@click.option(
    "--level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Event level.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the stored event as JSON.")
@pass_state
def events_append(
    state: Context,
    event_type: str,
    payload: str,
    run_id: str | None,
    causation: str | None,
    level: str,
    as_json: bool,
) -> None:
    """Append one event (for scripts) and print its seq and hash once committed."""
    from steve.objects.values import load_json

    try:
        value = load_json(payload, "--payload")
    except InvalidInput as exc:
        raise InvalidEvent("invalid payload", exc.detail) from exc
    except json.JSONDecodeError as exc:
        raise InvalidEvent("the payload is not JSON", str(exc)) from exc
    if not isinstance(value, dict):
        raise InvalidEvent("invalid payload", "the payload must be a JSON object")
    event = state.event_log().append(
        event_type, value, run_id=run_id, causation_id=causation, level=level
    )
    if as_json:
        click.echo(json.dumps(event.to_json(), sort_keys=True))
    else:
        click.echo(f"{event.seq} {event.hash.hex()}")


def _public_key(text: str) -> bytes:
    from steve.events.signing import parse_public_key

    try:
        return parse_public_key(text)
    except ValueError as exc:
        raise InvalidInput("invalid public key", f"expected 64 hex digits: {exc}") from exc


def pinned_key(state: Context) -> bytes | None:
    """The public key pinned in the repository's ``.steve/config``, if any."""
    from steve.repo import Repo

    return Repo.read_config(state.root()).events_public_key


def export_checkpoints(state: Context, path: Path) -> None:
    """`export-git`: the checkpoints signed by the pinned key into the mirror's
    refs/steve/checkpoints, with the key (nothing without a pinned key)."""
    from steve.gitbridge.witness import SignedCheckpoint, export_checkpoints_to

    pinned = pinned_key(state)
    if pinned is None:
        return
    records = state.event_log().signed_checkpoints(pinned)
    signed = [SignedCheckpoint(message, cp.signature) for cp, message in records]
    commit = export_checkpoints_to(path, pinned, signed)
    if commit is not None:
        click.echo(f"{commit} refs/steve/checkpoints updated")
        click.echo(f"exported {len(signed)} signed checkpoint(s)", err=True)


def witnessed(path: Path, public_key: bytes) -> list[Checkpoint]:
    """The checkpoints an export-git mirror at ``path`` holds (its refs/steve/checkpoints)."""
    from steve.events.verify import witnessed_checkpoint
    from steve.gitbridge.witness import read_checkpoints_from

    found = read_checkpoints_from(path)
    if found is None:
        raise InvalidInput("no checkpoints in the mirror", f"{path} has no refs/steve/checkpoints")
    _, checkpoints, problems = found
    if problems:
        raise InvalidInput("the mirror's checkpoints do not verify", problems[0])
    return [witnessed_checkpoint(c.message, c.signature, public_key) for c in checkpoints]


@events.command("verify")
@click.option(
    "--public-key",
    metavar="HEX",
    help="Check signatures against this Ed25519 public key (default: the pinned key).",
)
@click.option(
    "--require-sealed/--no-require-sealed",
    default=None,
    help="Fail when the rotation policy required a seal that no signature of the key "
    "covers (default: on when a key is pinned or given).",
)
@click.option(
    "--witness",
    type=click.Path(path_type=Path),
    metavar="MIRROR",
    help="Also require the checkpoints an export-git mirror holds (refs/steve/checkpoints).",
)
@click.option("--json", "as_json", is_flag=True, help="Problems and summary as JSON lines.")
@pass_state
def events_verify(
    state: Context,
    public_key: str | None,
    require_sealed: bool | None,
    witness: Path | None,
    as_json: bool,
) -> None:
    """Verify the whole chain, the head, sealed segments and checkpoint signatures,
    and report how much of the chain no signature of the pinned key covers.

    Prints each problem (the first bad seq and why); exit 9 if any.
    """
    from steve.cli.identity import trusted_key
    from steve.errors import NoPinnedKey

    explicit = public_key is not None
    pinned = _public_key(public_key) if public_key is not None else pinned_key(state)
    log = state.event_log()
    pinned, kept, from_identity = trusted_key(log, state.repo(), pinned, explicit=explicit)
    if (require_sealed or witness is not None) and pinned is None:
        raise NoPinnedKey("--require-sealed and --witness need a public key to check against")
    if witness is not None and pinned is not None:
        kept += witnessed(witness, pinned)
    report = log.verify(public_key=pinned, require_sealed=require_sealed, witnessed=kept)
    keys = sorted(p.hex() for p in log.public_keys().values())
    for problem in report.problems:
        if as_json:
            click.echo(
                json.dumps({"problem": problem.kind.value, "seq": problem.seq, "why": problem.why})
            )
        else:
            click.echo(str(problem))
    summary = {
        "events": report.events,
        "last_seq": report.last_seq,
        "head": report.head_hash.hex(),
        "segments": report.segments,
        "checkpoints": report.checkpoints,
        "public_keys": keys,
        "pinned_key": None if pinned is None else pinned.hex(),
        "signed_seq": report.signed_seq,
        "unsigned_events": report.unsigned_events,
        "seal_due": report.seal_due,
        "first_bad_seq": report.first_bad_seq,
        "ok": report.ok,
    }
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        status = "ok" if report.ok else "FAILED"
        click.echo(
            f"checked {report.events} events, {report.segments} segments, "
            f"{report.checkpoints} checkpoints: {status}",
            err=True,
        )
        if pinned is None:
            click.echo(
                "no public key pinned: signatures were not checked against a key you trust "
                "(see `steve events pin-key`)",
                err=True,
            )
        elif from_identity:
            click.echo(
                "no public key pinned: checked against this identity's key, which signed "
                "this log (see `steve events pin-key`)",
                err=True,
            )
        if pinned is not None and report.unsigned_events:
            signed = report.signed_seq or 0
            click.echo(
                f"unsigned: {report.unsigned_events} events ({signed + 1}..{report.last_seq}) "
                f"are covered by no signature of the pinned key",
                err=True,
            )
        click.echo(f"head {report.last_seq} {report.head_hash.hex()}")
    report.raise_for_problems()


@events.command("seal")
@click.option("--json", "as_json", is_flag=True, help="Print the segment and checkpoint as JSON.")
@pass_state
def events_seal(state: Context, as_json: bool) -> None:
    """Seal the open segment now and sign a checkpoint of the chain head with the
    signing identity (STEVE_SIGNING_PASSPHRASE or a prompt)."""
    from steve.cli.identity import load_signing_key, record_newest_checkpoint

    key = load_signing_key(interactive=True)
    log = state.event_log()
    segment = log.seal(key=key)
    checkpoint = log.store().checkpoints()[-1] if segment is not None else log.checkpoint(key=key)
    record_newest_checkpoint(log, key.public_key, state.repo())
    del key
    info = {
        "segment": None
        if segment is None
        else {
            "segment": segment.segment,
            "first_seq": segment.first_seq,
            "last_seq": segment.last_seq,
        },
        "checkpoint": checkpoint.checkpoint,
        "seq": checkpoint.seq,
        "head": checkpoint.head_hash.hex(),
        "signature": checkpoint.signature.hex(),
        "public_key": log.public_keys()[checkpoint.key_id].hex(),
    }
    if as_json:
        click.echo(json.dumps(info, sort_keys=True))
    else:
        if segment is not None:
            click.echo(
                f"sealed segment {segment.segment} ({segment.first_seq}..{segment.last_seq})"
            )
        click.echo(
            f"checkpoint {checkpoint.checkpoint} seq {checkpoint.seq} {checkpoint.head_hash.hex()}"
        )
        click.echo(f"public key {info['public_key']}")


@events.command("pin-key")
@click.argument("public_key", metavar="[HEX]", required=False)
@pass_state
def events_pin_key(state: Context, public_key: str | None) -> None:
    """Pin an Ed25519 public key (default: the signing identity's) in .steve/config;
    `steve events verify` then checks checkpoints against it.  Prints the key."""
    from steve.cli.identity import identity_dir
    from steve.events.signing import read_identity
    from steve.repo import CONFIG_NAME, STEVE_DIR, Repo

    key = _public_key(public_key) if public_key else read_identity(identity_dir()).public_key
    root = state.root()
    config = Repo.read_config(root)
    config.with_events_key(key).write(root / STEVE_DIR / CONFIG_NAME)
    if config.events_public_key not in (None, key):
        assert config.events_public_key is not None
        click.echo(f"replaced the pinned key {config.events_public_key.hex()}", err=True)
    click.echo(key.hex())


@cli.command("verify")
@click.argument("rev")
@click.option("--json", "as_json", is_flag=True, help="Problems and summary as JSON lines.")
@pass_state
def verify(state: Context, rev: str, as_json: bool) -> None:
    """Verify REV's whole closure by hash: re-hash and strictly decode every reachable
    object, check manifests against their schema version, report corrupt vs missing.

    Exit 9 if anything is wrong.
    """
    from steve.cli.progress import progress_display
    from steve.porcelain.verify import VerifyKind
    from steve.porcelain.verify import verify as verify_closure

    repo = state.repo()
    ring = None  # without a trust root (the pinned key) a keyring has no roots, and
    # verify then judges signatures as it does without one: only whether they verify
    if repo.config is not None and repo.config.events_public_key is not None:
        from steve.porcelain.trust import keyring  # the trust code: only when it can matter

        ring = keyring(repo)
    with progress_display(state) as shown:
        report = verify_closure(repo, rev, ring, progress=shown)
    for problem in report.problems:
        if as_json:
            click.echo(
                json.dumps(
                    {"problem": problem.kind.value, "id": problem.oid.hex, "detail": problem.detail}
                )
            )
        else:
            click.echo(str(problem))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "root": report.root.hex,
                    "objects": report.objects,
                    "bytes": report.bytes,
                    "problems": {k.value: report.count(k) for k in VerifyKind if report.count(k)},
                    "ok": report.ok,
                },
                sort_keys=True,
            )
        )
    else:
        status = "ok" if report.ok else "FAILED"
        click.echo(
            f"verified {report.objects} objects ({report.bytes} bytes) reachable from "
            f"{report.root.hex}: {status}",
            err=True,
        )
    report.raise_for_problems(rev)
