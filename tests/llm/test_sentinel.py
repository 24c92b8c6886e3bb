"""A secret set in the environment and pasted into a prompt is found nowhere.

``steve llm ask`` runs as a real subprocess with a live provider (the real
anthropic SDK against the loopback server, which echoes what it receives
and, once, fails with an error that quotes the secret).  Then a byte scan
of everything STEVE wrote: the decrypted steve.db and events.db (every
column of every table), the JSON log file, standard output and error, the
raw files under .steve/, and every object of a git export (inflated by git).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from steve.repo import Repo
from tests.conftest import PASSPHRASE
from tests.events.conftest import raw_connect
from tests.llm.servers import KEY, AnthropicServer, Seen, Status


def dump_db(path: Path, key: bytes) -> bytes:
    conn = raw_connect(path, key)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables
        out = []
        for t in tables:
            for row in conn.execute(f'SELECT * FROM "{t}"'):
                for cell in row:
                    out.append(
                        bytes(cell) if isinstance(cell, bytes | memoryview) else str(cell).encode()
                    )
        return b"\n".join(out)
    finally:
        conn.close()


def steve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "steve.cli.main", *args], env=env, capture_output=True, timeout=120
    )


def test_the_sentinel_is_found_nowhere(
    cli_repo: Path, tmp_path: Path, anthropic_server: AnthropicServer
) -> None:
    sentinel = "sentinel-" + secrets.token_hex(16)
    echoed: list[str] = []

    def echo(seen: Seen) -> str:
        text = str(seen.body.get("messages"))
        echoed.append(text)
        return f"You said: {text}"

    anthropic_server.on_reply = echo
    log_file = tmp_path / "steve.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEVE_", "ANTHROPIC_"))}
    env.update(
        STEVE_DIR=str(cli_repo),
        STEVE_PASSPHRASE=PASSPHRASE,
        STEVE_LOG="debug",
        STEVE_LOG_FILE=str(log_file),
        STEVE_TEST_DEPLOY_TOKEN=sentinel,
        ANTHROPIC_API_KEY=KEY,
        ANTHROPIC_BASE_URL=anthropic_server.base_url,
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    prompt = f"Deploy with token {sentinel} and key {KEY} please"
    ok = steve(env, "llm", "ask", "--llm", "anthropic", "--run", "r1", prompt)
    assert ok.returncode == 0, ok.stderr
    assert b"[REDACTED:STEVE_TEST_DEPLOY_TOKEN]" in ok.stdout  # the echo of what was sent
    assert echoed and all(sentinel not in e and KEY not in e for e in echoed)
    anthropic_server.plan(Status(400, message=f"cannot use {sentinel}"))
    failed = steve(env, "llm", "ask", "--llm", "anthropic", prompt + " again")
    assert failed.returncode == 6 and b"[STEVE-LLM-004]" in failed.stderr
    assert b"[REDACTED:STEVE_TEST_DEPLOY_TOKEN]" in failed.stderr
    # a git export carrying the exchange (tagged, so export-git takes it)
    listed = steve(env, "llm", "log")
    exchange = listed.stdout.split()[0].decode()
    tree = steve(env, "rev-parse", f"refs/llm/{exchange}").stdout.decode().strip()
    assert steve(env, "tag", "-m", "the exchange", "llm-exchange", tree).returncode == 0
    mirror = tmp_path / "mirror"
    exported = steve(env, "export-git", str(mirror), "refs/tags/llm-exchange")
    assert exported.returncode == 0, exported.stderr
    git_objects = subprocess.run(
        ["git", "-C", str(mirror), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    assert b"REDACTED" in git_objects  # the request really is in the export

    with Repo.open(cli_repo, passphrase=PASSPHRASE) as repo:
        key = repo.key
    assert key is not None
    steve_db = dump_db(cli_repo / ".steve" / "steve.db", key)
    events_db = dump_db(cli_repo / ".steve" / "events.db", key)
    assert b"llm.exchange" in events_db and b"REDACTED" in steve_db
    raw_files = b"".join(p.read_bytes() for p in (cli_repo / ".steve").rglob("*") if p.is_file())
    mirror_files = b"".join(p.read_bytes() for p in mirror.rglob("*") if p.is_file())
    places: dict[str, Any] = {
        "steve.db": steve_db,
        "events.db": events_db,
        "log file": log_file.read_bytes(),
        "stdout": ok.stdout + failed.stdout + listed.stdout,
        "stderr": ok.stderr + failed.stderr + listed.stderr + exported.stderr,
        ".steve files": raw_files,
        "git objects": git_objects,
        "git files": mirror_files,
    }
    assert log_file.read_bytes()  # the log was written
    for needle in (sentinel.encode(), KEY.encode()):
        found = [where for where, data in places.items() if needle in data]
        assert found == [], f"{needle!r} found in {found}"
