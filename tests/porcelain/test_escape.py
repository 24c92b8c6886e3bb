"""Control and bidirectional characters are escaped on display (issue 12, item 13).

ESC, NUL and U+202E in a manifest's text, a tag's message or a tree entry
name reach ``steve log`` and ``steve cat`` as visible escapes; the stored
bytes are unchanged (``cat-manifest`` and ``cat-file --raw`` give them back).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from steve.cli.main import cli
from steve.objects.model import Blob, Mode, Tree, TreeEntry
from steve.objects.oid import ObjectId
from steve.porcelain.escape import escape_text
from steve.porcelain.show import read_manifest
from steve.repo import Repo
from steve.store.kdf import KdfParams

EVIL = "evil \x1b[2J\x1b]0;pwned\x07 nul\x00 del\x7f c1\x9b bidi \u202egnp.exe\u2066x\u2069"
RAW_BAD = ["\x1b", "\x00", "\x07", "\x7f", "\x9b", "\u202e", "\u2066", "\u2069"]


@pytest.fixture
def env(repo_path: Path, fast_kdf: KdfParams) -> dict[str, str]:
    Repo.init(repo_path, passphrase="pw", kdf=fast_kdf).close()
    return {"STEVE_DIR": str(repo_path), "STEVE_PASSPHRASE": "pw", "SOURCE_DATE_EPOCH": "1"}


def run(env: dict[str, str], *args: str, input: str | None = None) -> str:
    res = CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.stdout_bytes.decode("utf-8")


def assert_clean(text: str) -> None:
    found = [repr(c) for c in RAW_BAD if c in text]
    assert found == [], f"raw {found} on display"


def test_log_and_cat_escape_a_hostile_manifest(env: dict[str, str]) -> None:
    draft = json.dumps({"title": EVIL, "questions": [{"id": "RQ-001", "question": EVIL,
                                                      "status": "open"}]})  # fmt: skip
    oid = run(env, "freeze", "research", "-", "--ref", "refs/heads/main", input=draft).strip()
    for args in (["log", "main"], ["log", "--oneline", "main"], ["cat", oid]):
        shown = run(env, *args)
        assert_clean(shown)
        assert "\\x1b[2J" in shown and "\\u202egnp.exe" in shown, args
    # the stored bytes are unchanged
    stored = json.loads(run(env, "cat-manifest", oid))
    assert stored["body"]["title"] == EVIL
    with Repo.open(env["STEVE_DIR"], passphrase="pw") as repo:
        assert read_manifest(repo, ObjectId.from_hex(oid)).manifest.body["title"] == EVIL


def test_cat_escapes_tag_messages_and_tree_names(env: dict[str, str]) -> None:
    with Repo.open(env["STEVE_DIR"], passphrase="pw") as repo:
        blob = repo.write(Blob(b"x"))
        tree = repo.write(Tree.from_entries([TreeEntry("a\x1b[31m\u202eb", Mode.FILE, blob)]))
        repo.update_ref("refs/heads/main", tree, None, message="m")
        repo.create_tag("t", tree, message=f"line one\n{EVIL}\n", now=1, tz=0)
    for args in (["cat", "main"], ["cat", "t"]):
        shown = run(env, *args)
        assert_clean(shown)
    assert "line one\nevil \\x1b[2J" in run(env, "cat", "t")  # lines stay lines


@given(st.text())
def test_escaping_leaves_no_unsafe_character_and_keeps_safe_text(text: str) -> None:
    shown = escape_text(text)
    assert_clean(shown)
    assert "\n" not in escape_text(text, one_line=True)
    if not any(c in text for c in RAW_BAD) and all(
        c in "\t\n" or (c.isprintable() and c not in "\u200e\u200f\u061c\u2028\u2029")
        for c in text
    ):
        assert shown == text
