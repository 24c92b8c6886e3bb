"""``generate`` nodes: a model's unified diff, applied in Python to the node's input tree.

A plan node of kind ``generate`` with a ``description`` is built like this
(:meth:`steve.porcelain.steps.Executor.run_node` calls :func:`ask_patch` and
:func:`apply_answer`):

1. the request (:func:`patch_request`) carries the node's description, the
   run's design, the input tree (every path, and the contents of the text
   files within :data:`CONTEXT_BYTES`; what is left out is said) and the
   feedback of the node's previous attempt in the run (its patch and why it
   failed; the failures of the run's last test certificate);
2. the *generate key* (:func:`generate_key`) hashes that request with the
   step's action key: the action cache maps it to the receipt, so the same
   request on the same input is built once (a replay of the run, or a second
   ``steve build``, asks nothing);
3. the model answers through :class:`~steve.llm.session.LLMSession`
   (recorded, budgeted with the node's ``budgets.tokens``, redacted);
4. the diff in the answer (:func:`extract_diff`) is stored as a blob, with a
   *patch record* (a tree of ``diff``, ``request`` and ``response``: the patch
   names the exchange it came from), and applied to the input tree *in
   Python* (:mod:`steve.porcelain.patch`): nothing the model wrote runs on
   the host;
5. the patched tree replaces the input and the node's command runs on it in
   a container, like any step (a check, a formatter, a build); the node's
   declared output is the tree that step leaves.

The receipt names the exchange (``provenance``), the diff, the input tree
and the patched tree (``generated``).  A diff that does not parse or apply
is the failure ``LLMError.PatchRejected`` with the ``STEVE-PATCH-*`` error as
its detail, and the next attempt's request carries it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial

import blake3

from steve.errors import (
    PatchBinary,
    PatchConflict,
    PatchDoesNotApply,
    PatchEmpty,
    PatchMalformed,
    PatchPathUnsafe,
    SteveError,
)
from steve.llm import record
from steve.llm.context import Piece, assemble
from steve.llm.provider import BYTES_PER_TOKEN_BOUND
from steve.llm.record import Exchange
from steve.llm.session import redact_request
from steve.llm.types import Message, Request
from steve.objects import cbor
from steve.objects.model import Mode, ObjectType, Tree, TreeEntry
from steve.objects.oid import ObjectId
from steve.objects.patch import parse_patch
from steve.objects.schemas.plan import Node
from steve.porcelain.modelio import ModelTarget
from steve.porcelain.patch import PatchedTree, apply_to_tree
from steve.repo import Repo

__all__ = [
    "CONTEXT_BYTES",
    "PatchAnswer",
    "apply_answer",
    "extract_diff",
    "generate_key",
    "is_generating",
    "patch_request",
]

CONTEXT_BYTES = 48 * 1024
"""File contents put into a generate request, at most (the paths are always listed);
at most half the node's ``budgets.tokens`` when it has one (upper-estimate tokens)."""
MAX_PATHS = 500
FEEDBACK_BYTES = 8 * 1024
KEY_VERSION = 1

SYSTEM = """\
You are the code generator of STEVE.  You change files only by answering with \
one unified diff in `git diff` format against the input directory shown (paths \
relative to it, a/PATH and b/PATH; /dev/null for added or deleted files).  Every \
context and removed line must match the file exactly; hunk headers must count \
their lines.  Answer with the diff in one ```diff fenced block and nothing else.  \
Your diff is applied by a program, never run; the result is built and tested in \
a container."""


def is_generating(node: Node) -> bool:
    """Whether ``node`` asks a model (a generate node with a description)."""
    return node.kind == "generate" and bool((node.description or "").strip())


def _clip(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore") + f"\n[... {len(data) - limit} bytes left out]"


def _file_text(repo: Repo, oid: ObjectId, size: int) -> str:
    data = repo.read_blob(oid)
    if b"\x00" in data:
        return f"[a binary file of {size} bytes, not shown]\n"
    text = data.decode("utf-8", "replace")
    return text if text.endswith("\n") or not text else text + "\n[no newline at end of file]\n"


def _files(repo: Repo, tree: ObjectId) -> Iterator[Piece]:
    """The input's files as context pieces (each loaded only if it may fit)."""
    for e in repo.ls_tree(tree, recursive=True):
        if e.type is not ObjectType.BLOB or e.mode.git == "120000":
            continue
        size = repo.object_info(e.oid).size
        yield Piece(f"file {e.path}", size, partial(_file_text, repo, e.oid, size))


def _tree_context(repo: Repo, input_name: str, tree: ObjectId, budget: int) -> str:
    """The input's paths, then as many files' contents as ``budget`` tokens hold
    (:func:`steve.llm.context.assemble`), then what was left out."""
    if repo.object_type(tree) is not ObjectType.TREE:
        return f"The input {input_name!r} is a single file, not a directory.\n"
    paths = [e.path for e in repo.ls_tree(tree, recursive=True)]
    lines = [f"The input directory {input_name!r} holds {len(paths)} files:\n"]
    lines += [f"  {p}\n" for p in paths[:MAX_PATHS]]
    if len(paths) > MAX_PATHS:
        lines.append(f"  [... {len(paths) - MAX_PATHS} more paths left out]\n")
    got = assemble([_files(repo, tree)], budget, report_limit=50)
    lines += [f"\n--- {label} ---\n{text}" for label, text in got.parts]
    if got.left_out:
        shown = ", ".join(f"{x.label.removeprefix('file ')}" for x in got.left_out)
        more = " ..." if got.more_left_out else ""
        lines.append(f"\nContents left out (too large for the request): {shown}{more}\n")
    return "".join(lines)


def patch_request(
    repo: Repo,
    target: ModelTarget,
    node: Node,
    input_name: str,
    base: ObjectId,
    *,
    design: str | None,
    feedback: Sequence[str] = (),
) -> Request:
    """The request a generate node sends (deterministic: the same node, input, design
    and feedback give the same request, hence the same record and generate key)."""
    parts = [f"The task (plan node {node.id!r}):\n{(node.description or '').strip()}\n"]
    if design:
        parts.append(f"\nThe design it serves:\n{_clip(design, 8 * 1024)}\n")
    budget = CONTEXT_BYTES // BYTES_PER_TOKEN_BOUND
    if node.budgets.tokens:
        budget = min(budget, node.budgets.tokens // 2)
    parts.append("\n" + _tree_context(repo, input_name, base, budget))
    if feedback:
        parts.append("\nThe previous attempt failed; fix it:\n")
        parts += [f"- {_clip(f, FEEDBACK_BYTES)}\n" for f in feedback]
    return target.request([Message.user("".join(parts))], system=SYSTEM)


def generate_key(target: ModelTarget, step_key: ObjectId, request: Request) -> ObjectId:
    """BLAKE3 of the base step's action key and the request as it is recorded (after
    redaction): the action cache's key for a generate node."""
    sent = redact_request(target.session.redactor, request)
    material = {
        "v": KEY_VERSION,
        "kind": "generate",
        "step": step_key.raw,
        "request": record.request_oid(sent).raw,
    }
    return ObjectId(blake3.blake3(cbor.encode(material)).digest())


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)


def extract_diff(text: str) -> bytes:
    """The diff in a model's answer: the first fenced ``diff``/``patch`` block, else the
    first fenced block that looks like a diff, else the whole text."""
    blocks = _FENCE.findall(text)
    for lang, body in blocks:
        if lang.lower() in ("diff", "patch", "udiff"):
            return str(body).encode("utf-8")
    for _, body in blocks:
        if str(body).lstrip().startswith(("diff --git", "--- ")):
            return str(body).encode("utf-8")
    return text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class PatchAnswer:
    """What a model's answer did: the diff blob, and the patched tree or the error."""

    exchange: Exchange
    diff: ObjectId
    record: ObjectId  # the patch record: a tree of diff, request and response
    patched: PatchedTree | None
    error: SteveError | None

    @property
    def detail(self) -> str:
        if self.error is None:
            return ""
        err = self.error
        return f"{err.code}: {err.message}" + (f" ({err.detail})" if err.detail else "")


def apply_answer(repo: Repo, exchange: Exchange, base: ObjectId) -> PatchAnswer:
    """Store the answer's diff as a blob and apply it to ``base`` (in Python).  A
    ``STEVE-PATCH-*`` error is returned, not raised: it is the node's failure."""
    diff = extract_diff(exchange.response.text)
    diff_id = repo.write_blob(diff)
    record_id = repo.write(
        Tree.from_entries(
            [
                TreeEntry("diff", Mode.FILE, diff_id),
                TreeEntry("request", Mode.FILE, exchange.request_oid),
                TreeEntry("response", Mode.FILE, exchange.response_oid),
            ]
        )
    )
    try:
        patched = apply_to_tree(repo, base, parse_patch(diff))
    except (
        PatchMalformed,
        PatchDoesNotApply,
        PatchBinary,
        PatchPathUnsafe,
        PatchConflict,
        PatchEmpty,
    ) as exc:
        return PatchAnswer(exchange, diff_id, record_id, None, exc)
    return PatchAnswer(exchange, diff_id, record_id, patched, None)
