"""The guided first run (F-UX-003): `steve start` as data.

A beginner is walked through ordinary ``steve`` commands, each printed before it
runs, from an empty directory to a passing test of a small example project.
This module holds the walk and nothing that talks to a person: the steps
(:class:`Step`: the plain explanation, the longer answer to ``?``, the command
or the files, and how to tell that the step is done), the facts that decide
which steps are done (:func:`gather`, read from the directory and the
repository), the design draft made from a person's own words
(:func:`design_yaml`, :func:`approve_design_yaml`, :func:`design_problems`) and
the example project's files (:func:`example_files`, :func:`write_new_file`).
``steve/cli/start.py`` asks, prints and runs.

Nothing is remembered between runs of the guide: what exists (the repository,
the run named :data:`GUIDED_RUN`, its records, the files) says where it
stopped, so running `steve start` again after Ctrl-C or a failure carries on at
the first step that is not done.

Progressive disclosure: :attr:`Step.explain` never uses the words in
:data:`TERMS`; only :attr:`Step.more` (shown when the person asks with ``?``) and
:data:`GLOSSARY` do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from steve.errors import SteveError
from steve.objects.model import ObjectType
from steve.objects.schemas import read_body, validate
from steve.objects.schemas.receipts import TestCertificate
from steve.porcelain.freeze import load_draft
from steve.porcelain.records import read_manifest_body
from steve.porcelain.runs import Stage, current_run, list_runs, run_manifests
from steve.repo import STEVE_DIR, Repo

__all__ = [
    "DEFAULT_CRITERIA",
    "DEFAULT_DESCRIPTION",
    "GLOSSARY",
    "GUIDED_RUN",
    "TERMS",
    "Facts",
    "Step",
    "approve_design_yaml",
    "commands_to_type",
    "design_problems",
    "design_yaml",
    "example_files",
    "gather",
    "guide_steps",
    "image_tag",
    "intake_text",
    "pending",
    "write_new_file",
]

GUIDED_RUN = "first-steps"
"""The name of the run the guide makes (`steve run new --name first-steps`)."""
DESIGN_FILE = "design.yaml"
EXAMPLE = "example"
PLAN_FILE = f"{EXAMPLE}/plan.yaml"
BUSYBOX = Path("/bin/busybox")
TERMS = ("DAG", "manifest", "receipt")
"""The words the guide keeps to itself until a person asks (``?``)."""

DEFAULT_DESCRIPTION = "A command-line tool that prints the words hello and world, every o as 0."
DEFAULT_CRITERIA: tuple[str, ...] = ("It prints hell0 on the first line and w0rld on the second.",)

Kind = Literal["command", "files", "describe"]


@dataclass(frozen=True, slots=True)
class Facts:
    """What exists: the directory's files and the repository's guided run."""

    root: Path
    has_repo: bool = False
    files: frozenset[str] = frozenset()  # the guide's files that exist (relative paths)
    run_id: str | None = None  # the newest run named GUIDED_RUN
    stage: Stage | None = None
    current: bool = False  # the guided run is the current run
    kinds: frozenset[ObjectType] = frozenset()  # record kinds the guided run has
    verdict: Literal["pass", "fail"] | None = None  # of its latest test certificate
    certificate: str | None = None  # its id (hex)


@dataclass(frozen=True, slots=True)
class Step:
    """One step: what it is for in plain words, the longer answer to ``?``, what it
    does (a ``steve`` command, files written, or questions), and when it is done."""

    key: str
    title: str
    explain: str
    more: str
    kind: Kind
    done: Callable[[Facts], bool]
    argv: tuple[str, ...] = ()  # after `steve`; "{name}": earlier output, or "{tag}"
    capture: str | None = None  # keep the command's last output line under this name
    files: tuple[str, ...] = field(default=())  # what a "files" step writes

    def command(self, values: Mapping[str, str]) -> tuple[str, ...]:
        """The argv with ``{name}`` placeholders filled in (KeyError: not known yet)."""
        return tuple(a.format_map(values) if "{" in a else a for a in self.argv)


def image_tag(root: Path) -> str:
    """The tag of the example's container image in the folder ``root``: one per folder,
    so removing one folder's tag never takes another's image."""
    import hashlib

    digest = hashlib.blake2b(str(root).encode("utf-8", "surrogateescape"), digest_size=4)
    return f"steve-first-steps:{digest.hexdigest()}"


def _planned(f: Facts) -> bool:
    return ObjectType.PLAN in f.kinds or PLAN_FILE in f.files


def guide_steps(*, intake: str | None = None, yes: bool = False) -> tuple[Step, ...]:
    """The walk, in order.  ``intake``: the text for `steve design --intake` when a model
    provider is configured (None: the design comes from design.yaml); ``yes``: commands
    that would ask for an approval get ``--yes``."""
    design_argv = (
        ("design", "--intake", intake, *(("--yes",) if yes else ()))
        if intake is not None
        else ("design", DESIGN_FILE)
    )
    example = tuple(f"{EXAMPLE}/{name}" for name in _EXAMPLE_NAMES)
    return (
        Step(
            "init", "Create your encrypted project folder",
            "STEVE keeps everything it records in a hidden folder, .steve, here. "
            "It is encrypted with a passphrase you choose now.",
            "The .steve folder holds two encrypted SQLite databases (SQLCipher): the "
            "objects and refs, and the event log. The key is derived from your "
            "passphrase with Argon2id; nothing readable is stored outside them.",
            "command", lambda f: f.has_repo, ("init", "."),
        ),
        Step(
            "describe", "Say what you want to build",
            "In a sentence or two, and how you will know it works.",
            "Your words become a design: its summary and its acceptance criteria. "
            "Frozen, the design is a manifest: a content-addressed, immutable record "
            "that every later step names as its parent.",
            "describe",
            lambda f: ObjectType.DESIGN in f.kinds
            or (intake is None and DESIGN_FILE in f.files),
            files=(DESIGN_FILE,) if intake is None else (),
        ),
        Step(
            "run", "Start a run",
            "A run is one piece of work, from the idea to a tested result. "
            f"This one is called {GUIDED_RUN}.",
            "A run moves through the stages DESIGN, RESEARCH, PLAN, BUILD, TEST and "
            "DEPLOY; every change of stage is recorded with who, when and why.",
            "command", lambda f: f.run_id is not None, ("run", "new", "--name", GUIDED_RUN),
        ),
        Step(
            "switch", "Go back to the guided run",
            f"Another run is the current one; the next commands work on {GUIDED_RUN}.",
            "`steve run switch` changes which run the stage commands act on.",
            "command", lambda f: f.run_id is None or f.current, ("run", "switch", GUIDED_RUN),
        ),
        Step(
            "design", "Record what you want",
            "STEVE stores your description, encrypted, and prints its id: a "
            "fingerprint of its content.",
            "This freezes the design manifest: canonical CBOR, named by its BLAKE3 "
            "hash. Change a word and the id changes; the old one stays in the history.",
            "command", lambda f: ObjectType.DESIGN in f.kinds, design_argv,
        ),
        Step(
            "research", "Skip research for now",
            "Bigger projects collect sources first. The example needs none, so the "
            "run moves on, and the reason is written down.",
            "`steve run goto` moves the run between stages the state machine allows; "
            "the research manifest is optional.",
            "command",
            lambda f: f.stage is not None and f.stage is not Stage.DESIGN,
            ("run", "goto", "RESEARCH", "--reason", "the example needs no research"),
        ),
        Step(
            "example", "Make a small example project",
            f"A tiny project in the folder {EXAMPLE}/: a text file, and a recipe for "
            "the sealed box (a container) it is built and tested in, made from the "
            "busybox program already on this machine. Nothing is downloaded.",
            "The container image is FROM scratch plus a static busybox; builds run in "
            "it offline, read-only, with no network and all capabilities dropped.",
            "files", lambda f: _planned(f) or all(p in f.files for p in example),
            files=example,
        ),
        Step(
            "image", "Build the sealed box",
            "Docker builds the box once; STEVE prints its id, so every build names "
            "exactly the box it ran in.",
            "Images are pinned by digest in the plan; a plan that names a tag is refused.",
            "command", _planned,
            ("image", "build", f"{EXAMPLE}/image", "--tag", "{tag}", "--no-sign"),
            capture="image",
        ),
        Step(
            "snapshot", "Take a snapshot of the example's files",
            "STEVE stores the files and prints one id for all of them.",
            "write-tree stores each file as a blob and the folder as a tree object, "
            "like `git write-tree`; the plan pins its inputs by these ids.",
            "command", _planned, ("write-tree", f"{EXAMPLE}/src"), capture="src",
        ),
        Step(
            "planfile", "Write the steps down",
            "Three steps: make the words, make the tool, and check that the tool "
            "prints them. They go in example/plan.yaml, with the two ids above.",
            "The plan is a DAG: nodes (gen, asm, check) and the edges between them; "
            "each node runs in a container with pinned inputs.",
            "files", _planned, files=(PLAN_FILE,),
        ),
        Step(
            "plan", "Record the steps",
            "STEVE checks the steps and stores them.",
            "This freezes the plan manifest; the run moves to PLAN.",
            "command", lambda f: ObjectType.PLAN in f.kinds, ("plan", PLAN_FILE),
        ),
        Step(
            "build", "Build it",
            "Each step runs in its own sealed box, offline. What it made is stored.",
            "Each node's result is a build receipt: the image, command, inputs and the "
            "output trees, by hash. A second `steve build` takes every node from the "
            "cache.",
            "command", lambda f: ObjectType.BUILD_RECEIPT in f.kinds, ("build",),
        ),
        Step(
            "test", "Test it",
            "The check runs against what was built. A pass is recorded as a "
            "certificate, so anyone can see later that the tests passed, and on what.",
            "The test certificate names the build receipts it tested and the JUnit "
            "report as evidence; `steve replay` re-runs any step and compares hashes.",
            "command", lambda f: f.verdict == "pass", ("test",),
        ),
    )  # fmt: skip


GLOSSARY: tuple[tuple[str, str], ...] = (
    ("manifest", "a frozen record of one stage's work (design, research, plan, build, "
     "test, deploy), named by the hash of its bytes; `steve cat ID` shows one"),
    ("receipt", "the record of one build step: image, command, inputs and outputs by "
     "hash; `steve logs` shows its output, `steve replay` re-runs it"),
    ("DAG", "the plan's steps and the order between them (a directed acyclic graph); "
     "each step runs when the steps it needs are done"),
    ("certificate", "the test stage's record: the verdict and the evidence"),
)  # fmt: skip
"""The words, explained when a person asks (``?`` at the end)."""


def pending(steps: tuple[Step, ...], facts: Facts) -> list[Step]:
    """The steps still to do, in order.  A step counts as done only when every step
    before it is done too (a later record without the earlier ones is not progress
    the guide can build on)."""
    for i, step in enumerate(steps):
        if not step.done(facts):
            return list(steps[i:])
    return []


def commands_to_type(steps: tuple[Step, ...]) -> list[str]:
    """The whole walk as lines to type by hand (for a terminal-less refusal and docs)."""
    lines: list[str] = []
    for step in steps:
        if step.kind == "command" and step.key != "switch":
            shown = step.command(
                {"image": "IMAGE_ID", "src": "TREE_ID", "tag": "steve-first-steps:TAG"}
            )
            lines.append("steve " + " ".join(_quote(a) for a in shown))
        elif step.files:
            lines.append("# write " + ", ".join(step.files))
    return lines


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def gather(root: Path, repo: Repo | None) -> Facts:
    """The facts about ``root`` (the guide's files) and ``repo`` (None: not open, or
    no repository yet)."""
    names = (DESIGN_FILE, PLAN_FILE, *(f"{EXAMPLE}/{n}" for n in _EXAMPLE_NAMES))
    files = frozenset(n for n in names if (root / n).is_file())
    has_repo = (root / STEVE_DIR).is_dir()
    if repo is None:
        return Facts(root, has_repo, files)
    runs = [r for r in list_runs(repo) if r.name == GUIDED_RUN]
    if not runs:
        return Facts(root, has_repo, files)
    run = max(runs, key=lambda r: (r.created, r.id))
    current = current_run(repo)
    latest = run_manifests(repo, run.id)
    verdict: Literal["pass", "fail"] | None = None
    cert = latest.get(ObjectType.TEST_CERTIFICATE)
    if cert is not None:
        manifest = read_manifest_body(repo, cert, ObjectType.TEST_CERTIFICATE)
        body = read_body(ObjectType.TEST_CERTIFICATE, manifest.version, manifest.body)
        assert isinstance(body, TestCertificate)
        verdict = body.verdict
    return Facts(
        root, has_repo, files, run.id, run.stage,
        current is not None and current.id == run.id,
        frozenset(latest), verdict, None if cert is None else cert.hex,
    )  # fmt: skip


# --- the design, in the person's words ------------------------------------------------

_DESIGN_HEADER = """\
# What you want to build, in STEVE's design format.  `steve design design.yaml`
# records it.  Change anything you like: the summary, the checks (one per line
# under acceptance_criteria).  `steve schema design` lists every field.
"""
_APPROVAL_KEYS = ("human_approved:", "approval_timestamp:")


def intake_text(description: str, criteria: tuple[str, ...]) -> str:
    """The request for `steve design --intake`: the description and the checks."""
    checks = "".join(f"\n- {c}" for c in criteria)
    return f"{description.strip()}" + (f"\nIt works when:{checks}" if checks else "")


def design_yaml(description: str, criteria: tuple[str, ...], *, now: int) -> str:
    """A design draft (YAML, not yet approved) from a description and plain-language
    checks, each check one acceptance criterion."""
    draft = {
        "schema_version": 1,
        "project_id": GUIDED_RUN,
        "name": _name_of(description),
        "created_at": now,
        "intent": {"summary": description.strip()},
        "acceptance_criteria": [
            {"id": f"AC-{i:03d}", "description": c.strip(), "testable": True}
            for i, c in enumerate(criteria, 1)
        ],
    }
    body = yaml.safe_dump(draft, sort_keys=False, allow_unicode=True, width=88)
    return f"{_DESIGN_HEADER}{body}human_approved: false\n"


def _name_of(description: str) -> str:
    words = description.strip().rstrip(".").split(",")[0].split()
    return " ".join(words[:12])[:120] or GUIDED_RUN


def approve_design_yaml(text: str, *, now: int) -> str:
    """``text`` with the approval set: ``human_approved: true`` and the time (any
    earlier approval lines replaced; the rest, comments included, kept as is)."""
    kept = [ln for ln in text.splitlines() if not ln.startswith(_APPROVAL_KEYS)]
    return "\n".join([*kept, "human_approved: true", f"approval_timestamp: {now}"]) + "\n"


def design_problems(text: str) -> list[str]:
    """What is wrong with a design draft, one line each (empty: it is valid)."""
    try:
        draft = load_draft(text.encode("utf-8"), DESIGN_FILE)
        if not isinstance(draft, dict):
            return ["the file must be a mapping of fields (name: value lines)"]
        if draft.get("schema_version") == 1:  # the envelope's, as `steve design` takes it
            del draft["schema_version"]
        validate(ObjectType.DESIGN, draft)
    except SteveError as err:
        return (err.detail or err.message).splitlines()
    return []


# --- the example project ------------------------------------------------------------------

_EXAMPLE_NAMES = ("src/words.txt", "image/Dockerfile", "image/busybox")
_DOCKERFILE = """\
# The example's sealed box: an empty root with a static busybox, made offline.
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""
_PLAN = """\
# The example's steps: make the words, make the tool, check it.  Each runs in the
# image pinned below, with no network; its input src is pinned by its id too.
title: Build and test the word tool
nodes:
  - id: gen
    kind: run
    image: "{image}"
    command: [/bin/sh, -c, "mkdir -p out && sed 's/o/0/g' src/words.txt > out/words.txt"]
    inputs:
      - {{name: src, pinned: "{src}"}}
    outputs: [out]
    budgets: {{time_ms: 60000}}
  - id: asm
    kind: run
    image: "{image}"
    command:
      - /bin/sh
      - -c
      - "mkdir -p bin && {{ echo '#!/bin/sh'; echo 'cat <<EOF'; cat in/words.txt; echo EOF; }} > bin/tool && chmod 755 bin/tool"
    inputs:
      - {{name: in, node: gen, output: out}}
    outputs: [bin]
    budgets: {{time_ms: 60000}}
  - id: check
    kind: test
    image: "{image}"
    command:
      - /bin/sh
      - -c
      - |
        got=$(sh bin/tool); want=$(printf 'hell0\\nw0rld')
        if [ "$got" = "$want" ]; then case='<testcase classname="tool" name="prints_words"/>'; rc=0
        else case='<testcase classname="tool" name="prints_words"><failure message="mismatch"/></testcase>'; rc=1; fi
        printf '<?xml version="1.0"?><testsuite name="tool">%s</testsuite>' "$case" > junit.xml
        exit $rc
    inputs:
      - {{name: bin, node: asm, output: bin}}
    outputs: [junit.xml]
    budgets: {{time_ms: 60000}}
edges:
  - {{from_node: gen, to_node: asm}}
  - {{from_node: asm, to_node: check}}
environment:
  image: busybox-static
"""  # noqa: E501


def example_files(
    step: Step, values: Mapping[str, str], *, busybox: Path = BUSYBOX
) -> dict[str, tuple[bytes, int]]:
    """What a ``files`` step writes: relative path -> (content, mode).  The busybox
    binary is read from ``busybox`` (FileNotFoundError when it is missing)."""
    out: dict[str, tuple[bytes, int]] = {}
    for name in step.files:
        if name == PLAN_FILE:
            out[name] = (_PLAN.format_map(values).encode(), 0o644)
        elif name.endswith("words.txt"):
            out[name] = (b"hello\nworld\n", 0o644)
        elif name.endswith("Dockerfile"):
            out[name] = (_DOCKERFILE.encode(), 0o644)
        elif name.endswith("busybox"):
            out[name] = (busybox.read_bytes(), 0o755)
    return out


def write_new_file(root: Path, name: str, data: bytes, mode: int = 0o644) -> Path:
    """Write ``root/name`` whole or not at all: a temporary file beside it, renamed into
    place (an interrupted write leaves no half file).  Parent folders are made."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        tmp.chmod(mode)  # whatever the umask took away
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
