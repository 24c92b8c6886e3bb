"""The model-driven stage commands: ``steve design --intake``, ``steve plan --decompose``.

The commands themselves are ``design`` and ``plan`` (:mod:`steve.cli.porcelain`);
they call here when given ``--intake`` or ``--decompose``.  This module
parses the model options, shows the draft, asks for the approval on a
terminal (``--yes`` approves without asking; with neither, nothing is
frozen) and runs ``$VISUAL``/``$EDITOR`` for ``plan --edit``; the library
(:mod:`steve.porcelain.intake`, :mod:`steve.porcelain.decompose`) does the
rest and never prompts.

Model options (also on ``steve build``, for generate nodes): ``--llm`` and
``--llm-model`` of :mod:`steve.cli.llmopts` (``scripted``, ``replay[:PROVIDER]``,
``anthropic``, ``openai``; docs/llm.md).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from steve.cli.app import Context, frozen_time, identity, is_terminal
from steve.cli.homely import report_recorded
from steve.errors import (
    ApprovalDeclined,
    EditorFailed,
    InvalidInput,
    ManifestInvalid,
    ModelOutputNeedsApproval,
)
from steve.messages import msg

if TYPE_CHECKING:
    from steve.objects.oid import ObjectId
    from steve.porcelain.modelio import ModelTarget
    from steve.porcelain.stages import Recorded


def model_target(state: Context, llm_name: str | None, llm_model: str | None) -> ModelTarget:
    """The model a stage asks, from ``--llm``/``--llm-model`` (:mod:`steve.cli.llmopts`)."""
    from steve.cli.llmopts import open_llm
    from steve.porcelain.modelio import ModelTarget

    llm = open_llm(state, llm_name, llm_model)
    return ModelTarget(llm.session, llm.provider, llm.model)


def build_target(state: Context, llm_name: str | None, llm_model: str | None) -> ModelTarget | None:
    """The model ``steve build`` gives generate nodes: only one chosen on purpose
    (``--llm``, ``STEVE_LLM`` or the repository config), never the offline default."""
    from steve.cli.llmopts import choose

    if choose(state, llm_name, llm_model).source == "default":
        return None
    return model_target(state, llm_name, llm_model)


def _stream_text(quiet: bool) -> Callable[[str], None] | None:
    if quiet:
        return None

    def write(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    return write


def _approval(kind: str, yes: bool) -> str:
    """How the draft shown is approved: ``yes-flag``, ``terminal``, or an error."""
    if yes:
        return "yes-flag"
    if not (is_terminal(sys.stdin.buffer) and is_terminal(sys.stderr.buffer)):
        raise ModelOutputNeedsApproval(kind)
    if not click.confirm(msg("plan.freeze_draft", kind=kind), default=False, err=True):
        raise ApprovalDeclined(kind)
    return "terminal"


def _show(title: str, text: str, quiet: bool) -> None:
    if not quiet:
        click.echo(f"\n--- {title} ---\n{text.rstrip()}\n---", err=True)


def _report(result: Recorded, kind: str, quiet: bool) -> None:
    if quiet:
        return
    sys.stdout.write(result.oid.hex + "\n")
    sys.stdout.flush()
    report_recorded(click.get_current_context().find_object(Context), result, kind)


def design_intake(
    state: Context,
    text: str,
    *,
    run: str | None,
    project: str | None,
    yes: bool,
    rounds: int,
    llm_name: str | None,
    llm_model: str | None,
    quiet: bool,
) -> None:
    from steve.porcelain.intake import approve_design, propose_design
    from steve.porcelain.modelio import dump_yaml

    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise InvalidInput("nothing to design", "--intake needs a description of the work")
    target = model_target(state, llm_name, llm_model)
    repo = state.repo()
    now, _ = frozen_time()
    proposal = propose_design(
        repo,
        target,
        text,
        run_id=run,
        project_id=project,
        now=now,
        rounds=rounds,
        on_text=_stream_text(quiet),
    )
    _show("design draft (from the model)", dump_yaml(proposal.model_draft), quiet)
    how = _approval("design", yes)
    answered, tz = frozen_time()  # the time of the answer
    result = approve_design(
        repo,
        proposal,
        how="terminal" if how == "terminal" else "yes-flag",
        now=answered,
        tz=tz,
        actor=str(identity()),
    )
    _report(result, "design", quiet)


def _pairs(values: tuple[str, ...], what: str) -> list[tuple[str, str]]:
    out = []
    for v in values:
        name, sep, ref = v.partition("=")
        if not sep:
            name, ref = what, v
        if not name or not ref:
            raise InvalidInput(f"invalid --{what}", f"{v!r}: give NAME=VALUE")
        out.append((name, ref))
    return out


def _edit(editor: str, text: str) -> bytes:
    """The text after ``editor`` edited it in a private temporary file (memory-backed
    when /dev/shm exists), removed right after."""
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="steve-edit-", dir=base) as tmp:
        os.chmod(tmp, 0o700)  # noqa: PTH101
        path = Path(tmp) / "plan.yaml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            proc = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except OSError as exc:
            raise EditorFailed(editor, exc.strerror or str(exc)) from None
        if proc.returncode != 0:
            raise EditorFailed(editor, f"exit status {proc.returncode}")
        return path.read_bytes()


def plan_decompose(
    state: Context,
    *,
    run: str | None,
    images: tuple[str, ...],
    inputs: tuple[str, ...],
    hint: str | None,
    edit: bool,
    editor: str | None,
    yes: bool,
    rounds: int,
    llm_name: str | None,
    llm_model: str | None,
    quiet: bool,
) -> None:
    from steve.porcelain.decompose import approve_plan, propose_plan, render_plan, revise_plan

    repo = state.repo()
    image_map = dict(_pairs(images, "image"))
    input_map: dict[str, ObjectId] = {n: repo.rev_parse(r) for n, r in _pairs(inputs, "input")}
    if not image_map:
        raise InvalidInput("no image offered", "give --image NAME=sha256:<id> (`steve image ls`)")
    if edit and not editor:
        raise EditorFailed("(none)", "set VISUAL or EDITOR")
    target = model_target(state, llm_name, llm_model)
    proposal = propose_plan(
        repo,
        target,
        images=image_map,
        inputs=input_map,
        run_id=run,
        hint=hint,
        rounds=rounds,
        on_text=_stream_text(quiet),
    )
    if edit:
        assert editor is not None
        text = render_plan(proposal)
        while True:
            edited = _edit(editor, text)
            try:
                proposal = revise_plan(proposal, edited, images=image_map, inputs=input_map)
                break
            except (ManifestInvalid, InvalidInput) as exc:
                if not is_terminal(sys.stdin.buffer):
                    raise
                click.echo(msg("plan.edited_invalid", error=exc), err=True)
                if not click.confirm(msg("plan.edit_again"), default=True, err=True):
                    raise
                text = edited.decode("utf-8", "replace")
    _show("plan draft" + (" (edited)" if proposal.edited else " (from the model)"),
          render_plan(proposal), quiet)  # fmt: skip
    _approval("plan", yes)
    now, tz = frozen_time()
    _report(approve_plan(repo, proposal, now=now, tz=tz, actor=str(identity())), "plan", quiet)
