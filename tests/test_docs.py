"""The documentation is true for the code: checked against click, steve.errors,
the SQL schema, and by running the README's main job and the Python examples.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import steve.errors
from steve.cli.app import load_commands
from steve.cli.main import cli
from steve.objects.model import CHUNK_SIZE
from steve.store import kdf, sqlite

COMMANDS = load_commands()

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"

MAIN_JOB = "python3 -m pip install -e . && bash examples/tour.sh"
TEST_JOB = "python3 -m pip install -e '.[test]' && python3 -m pytest -q"

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.M)
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```\s*$", re.M | re.S)
OPTION_TOKEN = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def mask_fences(text: str) -> str:
    """``text`` with fenced code blanked out (same offsets), so a ``# comment``
    inside a code block is not taken for a heading."""
    return FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def sections(text: str, level: int) -> dict[str, str]:
    """Heading title -> body, for headings of exactly ``level``; a body ends at
    the next heading of that level or higher."""
    heads = list(HEADING.finditer(mask_fences(text)))
    out: dict[str, str] = {}
    for i, m in enumerate(heads):
        if len(m.group(1)) != level:
            continue
        end = len(text)
        for nxt in heads[i + 1 :]:
            if len(nxt.group(1)) <= level:
                end = nxt.start()
                break
        out[m.group(2)] = text[m.end() : end]
    return out


def option_strings(command: click.Command) -> set[str]:
    found: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option):
            found.update(param.opts)
            found.update(param.secondary_opts)
    return found


def mentions(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def table_options(body: str) -> set[str]:
    """Option strings named in the first cell of the body's table rows."""
    found: set[str] = set()
    for line in body.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        for code in re.findall(r"`([^`]*)`", first):
            found.update(OPTION_TOKEN.findall(code))
    return found


def slug(title: str) -> str:
    """GitHub's heading anchor."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


# --- (a) docs/cli.md against click ------------------------------------------------------


def command_sections() -> dict[str, str]:
    found = {}
    for title, body in sections(read(DOCS / "cli.md"), 3).items():
        m = re.fullmatch(r"`steve ([a-z-]+)`", title)
        if m:
            found[m.group(1)] = body
    return found


def test_every_command_has_a_heading_and_every_heading_a_command() -> None:
    documented = command_sections()
    registered = set(COMMANDS)
    assert registered, "no commands registered on steve.cli.main.cli"
    assert sorted(registered - set(documented)) == [], "commands missing from docs/cli.md"
    assert sorted(set(documented) - registered) == [], "docs/cli.md documents unknown commands"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_of_a_command_is_documented_in_its_section(name: str) -> None:
    body = command_sections().get(name)
    assert body is not None, f"no `steve {name}` heading in docs/cli.md"
    real = option_strings(COMMANDS[name])
    missing = sorted(o for o in real if not mentions(body, o))
    assert missing == [], f"{name}: options not in its docs/cli.md section"
    invented = sorted(table_options(body) - real)
    assert invented == [], f"{name}: docs/cli.md lists options click does not have"


def test_global_options_are_documented() -> None:
    text = read(DOCS / "cli.md")
    intro = text[: text.index("\n## ")]
    real = option_strings(cli) | {"-h", "--help"}
    assert sorted(o for o in real if not mentions(intro, o)) == []
    assert table_options(intro) <= real


def test_documented_defaults_match_click() -> None:
    body = command_sections()
    defaults = {
        ("unlock", "ttl"): "15m",
        ("gc", "prune"): "2.weeks.ago",
        ("hash-object", "type_"): "blob",
    }
    for (cmd, param_name), shown in defaults.items():
        param = next(p for p in COMMANDS[cmd].params if p.name == param_name)
        assert param.default == shown
        assert f"`{shown}`" in body[cmd], (cmd, shown)


def test_environment_section_lists_every_variable_the_cli_reads() -> None:
    env = sections(read(DOCS / "cli.md"), 2)["Environment"]
    read_by_cli = set()
    for path in (ROOT / "steve" / "cli").glob("*.py"):
        read_by_cli.update(re.findall(r"STEVE_[A-Z_]+", read(path)))
    assert read_by_cli >= {"STEVE_DIR", "STEVE_PASSPHRASE", "STEVE_KEY_FILE"}
    assert sorted(v for v in read_by_cli if f"`{v}`" not in env) == []


def test_exit_code_table_matches_steve_errors() -> None:
    table = sections(read(DOCS / "cli.md"), 2)["Exit codes"]
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", table, re.M))
    constants = {
        name: value
        for name, value in vars(steve.errors).items()
        if name.startswith("EXIT_") and isinstance(value, int)
    }
    assert sorted(str(v) for v in constants.values() if str(v) not in rows) == []
    for cls in all_errors():
        assert str(cls.exit_code) in rows, cls.__name__


# --- (b) docs/errors.md against steve.errors --------------------------------------------


def all_errors() -> list[type[steve.errors.SteveError]]:
    out: list[type[steve.errors.SteveError]] = []
    stack: list[type[steve.errors.SteveError]] = [steve.errors.SteveError]
    while stack:
        cls = stack.pop()
        out.append(cls)
        stack.extend(cls.__subclasses__())
    return out


def test_every_error_code_is_documented_with_its_class_and_exit_code() -> None:
    rows = {}
    for line in read(DOCS / "errors.md").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`STEVE-"):
            rows[cells[0].strip("`")] = cells
    errors = all_errors()
    assert len(errors) > 20
    assert len({cls.code for cls in errors}) == len(errors), "error codes must be unique"
    for cls in errors:
        assert cls.code in rows, f"{cls.__name__} ({cls.code}) missing from docs/errors.md"
        _, name, exit_code, meaning, action = rows[cls.code]
        assert name == f"`{cls.__name__}`"
        assert exit_code == str(cls.exit_code), cls.code
        assert meaning, cls.code
        assert action == cls.action, cls.code
    assert sorted(set(rows) - {cls.code for cls in errors}) == [], "stale codes in errors.md"


# --- (c) README's two commands ----------------------------------------------------------


def test_readme_has_exactly_the_two_setup_commands() -> None:
    body = sections(read(README), 2)["Two commands"]
    blocks = [code.strip() for _, code in FENCE.findall(body)]
    assert blocks == [MAIN_JOB, TEST_JOB]
    assert ".ci/run" in body
    ci = read(ROOT / ".ci" / "run")
    assert "python3 -m pytest -q" in ci
    assert "-e '.[test]'" in ci
    assert "ruff check" in ci
    assert "mypy" in ci


def test_readme_covers_what_the_style_guide_asks() -> None:
    titles = set(sections(read(README), 2))
    assert {"Two commands", "CLI tour", "The same from Python", "Keys", "Read more"} <= titles


# --- (d) the main job -------------------------------------------------------------------


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEVE_")}
    # the console script is installed next to the interpreter running the tests
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["TMPDIR"] = str(tmp_path)
    env["LC_ALL"] = "C.UTF-8"
    return env


def test_tour_runs_end_to_end(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    assert shutil.which("steve", path=env["PATH"]), "the steve console script is not installed"
    proc = subprocess.run(
        ["bash", str(ROOT / "examples" / "tour.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=420,  # three offline image builds, builds and tests; a loaded 2-core machine
        check=False,
    )
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout.decode())
    err = proc.stderr.decode()
    assert proc.returncode == 0, out + err
    lines = out.splitlines()

    def after(header_start: str) -> str:
        i = next(i for i, line in enumerate(lines) if line.startswith(header_start))
        return lines[i + 1]

    blob = after("$ steve hash-object -w README.md")
    assert re.fullmatch(r"[0-9a-f]{64}", blob)
    assert after("$ steve cat-file -t") == "blob"
    assert after("$ steve cat-file --raw") == blob  # BLAKE3 of the stored bytes is the id
    tree = after("$ steve write-tree")
    assert re.fullmatch(r"[0-9a-f]{64}", tree)
    assert f"{tree} tree " in out  # cat-file --batch-check framing
    assert "nope missing" in lines
    assert "checked 5 objects, 3 refs: ok" in err
    assert "[STEVE-REV-001]" in err
    assert "exit status 5" in lines
    assert list(tmp_path.iterdir()) == [], "the tour must clean up its temporary directory"
    # the image the tour built is gone with its tag
    tag = re.search(r"steve image build --tag (steve-example-busybox:\S+)", out)
    assert tag is not None, out
    gone = subprocess.run(["docker", "image", "inspect", tag.group(1)], capture_output=True)
    assert gone.returncode != 0, f"the tour left the image {tag.group(1)} behind"
    # every id the README quotes is one the tour printed (the README's ids are not stale)
    printed = set(re.findall(r"\b[0-9a-f]{64}\b", out + err))
    for prefix, suffix in readme_ids():
        assert any(i.startswith(prefix) and i.endswith(suffix) for i in printed), (
            f"README.md quotes {prefix}{'...' + suffix if suffix else ''}, "
            "which the tour does not print: update the README from the tour's output"
        )


def readme_ids() -> list[tuple[str, str]]:
    """Ids quoted in the README's console blocks: ``HEX``, ``HEX...HEX`` (abridged)."""
    found = []
    for lang, code in FENCE.findall(read(ROOT / "README.md")):
        if lang != "console":
            continue
        for m in re.finditer(
            r"(?<![0-9a-z])([0-9a-f]{8,64})(?:\.\.\.([0-9a-f]{4,}))?(?![0-9a-z])", code
        ):
            if not m.group(1).isdigit():  # times such as 1700000000 are not ids
                found.append((m.group(1), m.group(2) or ""))
    return found


def test_readme_quotes_ids() -> None:
    """The stale-id check above has something to check."""
    ids = readme_ids()
    assert len(ids) >= 10 and ("ecc39bc4", "8246a90c") in ids


# --- examples in the docs run -----------------------------------------------------------


def python_blocks(path: Path) -> list[str]:
    return [code for lang, code in FENCE.findall(read(path)) if lang == "python"]


@pytest.mark.parametrize("doc", ["README.md", "docs/python-api.md"])
def test_python_examples_run(doc: str, tmp_path: Path) -> None:
    blocks = python_blocks(ROOT / doc)
    assert len(blocks) == 1
    proc = subprocess.run(
        [sys.executable, "-c", blocks[0]],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / ("project" if doc == "README.md" else "demo") / ".steve").is_dir()


# --- docs/storage.md against the code ---------------------------------------------------


def normalise(sql: str) -> str:
    return " ".join(sql.split())


def test_storage_schema_is_the_code_schema() -> None:
    text = normalise(read(DOCS / "storage.md"))
    schema = sqlite._SCHEMA + sqlite._SCHEMA_V2 + sqlite._DERIVED + sqlite._MANIFESTS
    schema += sqlite._SECRETS.replace("IF NOT EXISTS ", "")
    for stmt in schema.split(";"):
        if stmt.strip():
            assert normalise(stmt) in text, stmt.strip().splitlines()[0]


def test_storage_numbers_are_the_code_numbers() -> None:
    text = read(DOCS / "storage.md")
    assert f"memory_kib = {kdf.MEMORY_KIB}" in text
    assert f"iterations = {kdf.ITERATIONS}" in text
    assert f"parallelism = {kdf.PARALLELISM}" in text
    assert f"{kdf.MEMORY_KIB // 1024} MiB" in text
    assert f"`CHUNK_SIZE = {CHUNK_SIZE}`" in text
    assert "temp_store = MEMORY" in text


# --- links ------------------------------------------------------------------------------


def doc_files() -> list[Path]:
    return [README, ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


def test_relative_links_and_anchors_resolve() -> None:
    broken = []
    for doc in doc_files():
        for target in re.findall(r"\]\(([^)\s]+)\)", read(doc)):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = (doc.parent / file_part).resolve() if file_part else doc
            if not dest.exists():
                broken.append(f"{doc.name}: {target}")
                continue
            if anchor and dest.suffix == ".md":
                anchors = {slug(t) for _, t in HEADING.findall(mask_fences(read(dest)))}
                if anchor not in anchors:
                    broken.append(f"{doc.name}: {target} (no such heading)")
    assert broken == []


def test_changelog_has_unreleased_section() -> None:
    assert "Unreleased" in sections(read(ROOT / "CHANGELOG.md"), 2)


def test_plaintext_list_names_every_file_the_cli_can_write_outside_the_database() -> None:
    """docs/storage.md's "What is plaintext" names the opt-in log file too."""
    body = sections(read(DOCS / "storage.md"), 3)["What is plaintext"]
    for variable in ("STEVE_LOG_FILE", "STEVE_LOG"):
        assert mentions(body, variable), variable
    assert "ref names" in body and "run ids" in body


def test_benchmarks_summary_does_not_hide_a_fail() -> None:
    text = read(DOCS / "benchmarks.md")
    failed = re.findall(r"^\|.*\bFAIL\b.*\|\s*$", text, re.M)
    if failed:
        assert not re.search(r"\ball goals pass", text, re.I), failed


def test_manifests_page_describes_every_plan_field_kind_and_capability() -> None:
    """docs/manifests.md names every plan field, node kind, request and capability, and
    the container rules a node runs under (not only python-api.md)."""
    from typing import get_args

    from steve.objects.schemas.plan import (
        CAPABILITIES,
        DEFAULT_USER,
        Node,
        NodeKind,
        NodeRequests,
        PlanManifest,
    )

    text = read(DOCS / "manifests.md")
    names = [*PlanManifest.model_fields, *Node.model_fields, *NodeRequests.model_fields]
    words = [*names, *get_args(NodeKind), *CAPABILITIES]
    missing = sorted({w for w in words if not re.search(rf"`[^`]*\b{w}\b[^`]*`", text)})
    assert missing == [], "not described in docs/manifests.md"
    for rule in ("/work/<name>", DEFAULT_USER, "read-only root", "no network"):
        assert rule in text, rule
