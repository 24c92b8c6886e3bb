"""`steve research ...` end to end through `python -m steve` against a loopback site."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from steve.repo import Repo
from steve.store.kdf import KdfParams
from tests.research.server import NOTES, Site, serve


@pytest.fixture
def site() -> Iterator[Site]:
    with serve() as s:
        yield s


@pytest.fixture
def env(repo_path: Path, fast_kdf: KdfParams, steve_env: dict[str, str]) -> dict[str, str]:
    Repo.init(repo_path, passphrase=steve_env["STEVE_PASSPHRASE"], kdf=fast_kdf).close()
    for var in ("SOURCE_DATE_EPOCH", "STEVE_KILL_SWITCH"):
        steve_env.pop(var, None)
    return steve_env


def steve(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steve", *args],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_fetch_offline_refresh_search_and_import(
    env: dict[str, str], site: Site, tmp_path: Path
) -> None:
    url = site.url("/article")
    first = steve(env, "research", "fetch", url, site.url("/notes.txt"))
    assert first.returncode == 0, first.stderr
    by_url = {line.split()[1]: line.split()[0] for line in first.stdout.splitlines()}
    assert sorted(by_url) == sorted([url, site.url("/notes.txt")])  # in commit order
    ids = [by_url[url]]
    seen = site.count()
    # SOURCE_DATE_EPOCH makes fetches offline: same ids, no request, a miss is a coded error
    offline = steve(env, "research", "fetch", url, "--json", SOURCE_DATE_EPOCH="1767225600")
    assert offline.returncode == 0, offline.stderr
    answer = json.loads(offline.stdout)
    assert answer["record"] == ids[0] and answer["from_mirror"] is True
    miss = steve(env, "research", "fetch", site.url("/second"), SOURCE_DATE_EPOCH="1")
    assert miss.returncode == 5 and "[STEVE-RES-009]" in miss.stderr
    assert site.count() == seen
    online = steve(env, "research", "fetch", "--online", site.url("/second"), SOURCE_DATE_EPOCH="1")
    assert online.returncode == 0 and site.count("/second") == 1
    # refresh prints the old and the new record
    site.pages[
        "/article"
    ].body = b"<html><body><article><p>new words here</p></article></body></html>"
    fresh = steve(env, "research", "refresh", url)
    assert fresh.returncode == 0, fresh.stderr
    old, arrow, new, shown = fresh.stdout.split()
    assert (old, arrow, shown) == (ids[0], "->", url) and new != old
    # search over the mirror, recorded
    found = steve(env, "research", "search", "kestrel", "--json")
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    assert [r["url"] for r in result["results"]] == [site.url("/notes.txt")]
    assert result["query"] == "kestrel" and result["provider"] == "local"
    sx = steve(
        env, "research", "search", "kestrel", "--provider", "searxng", "--searxng", site.base
    )
    assert sx.returncode == 0 and sx.stdout.split()[0] == site.url("/notes.txt")
    # import: a mirror shipped in a directory
    d = tmp_path / "m"
    d.mkdir()
    (d / "n.txt").write_bytes(NOTES)
    entry = {"url": "https://example.org/n", "file": "n.txt", "media_type": "text/plain"}
    (d / "index.json").write_text(json.dumps([{**entry, "fetched_at": 1}]))
    imp = steve(env, "research", "import", str(d))
    assert imp.returncode == 0 and imp.stdout.split()[1] == "https://example.org/n"
    again = steve(env, "research", "fetch", "https://example.org/n", "--offline")
    assert again.returncode == 0 and again.stdout.split()[0] == imp.stdout.split()[0]


def test_refusals_exit_with_their_code_and_the_kill_switch_denies(
    env: dict[str, str], site: Site
) -> None:
    robots = steve(env, "research", "fetch", site.url("/private/secret"), site.url("/notes.txt"))
    assert robots.returncode == 12 and "[STEVE-RES-002]" in robots.stderr
    assert robots.stdout.split()[1] == site.url("/notes.txt")  # the other one was stored
    killed = steve(env, "research", "fetch", site.url("/article"), STEVE_KILL_SWITCH="1")
    assert killed.returncode == 12 and "[STEVE-GATE-007]" in killed.stderr
    assert site.count("/article") == 0
    scope = steve(env, "research", "scope", "--ignore-robots", "--json")
    assert scope.returncode == 5 and "[STEVE-STATE-002]" in scope.stderr  # no run yet
    shown = steve(env, "research", "scope", "--show", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["policy"]["robots"] is True


DESIGN_YAML = """\
project_id: p
name: demo
created_at: 1
intent: {summary: do it}
human_approved: false
research_questions:
  - {id: RQ-001, question: "How does WAL work?", priority: Must}
  - {id: RQ-002, question: "What is content addressing?", priority: Should}
"""


@pytest.mark.slow
def test_scope_per_question_drives_fetch(env: dict[str, str], site: Site, tmp_path: Path) -> None:
    assert steve(env, "run", "new").returncode == 0
    (tmp_path / "d.yaml").write_text(DESIGN_YAML)
    assert steve(env, "design", str(tmp_path / "d.yaml")).returncode == 0
    rec = steve(env, "research", "scope", "--question", "RQ-002", "--allow", "example.org")
    assert rec.returncode == 0, rec.stderr
    shown = json.loads(steve(env, "research", "scope", "--show", "--json").stdout)
    assert shown["id"] == rec.stdout.strip()
    assert [q["id"] for q in shown["questions"]] == ["RQ-001", "RQ-002"]
    assert [q["policy"]["allow"] for q in shown["questions"]] == [[], ["example.org"]]
    refused = steve(env, "research", "fetch", "--question", "RQ-002", site.url("/article"))
    assert refused.returncode == 12 and "[STEVE-RES-001]" in refused.stderr
    assert site.count() == 0
    unknown = steve(env, "research", "fetch", "--question", "RQ-009", site.url("/article"))
    assert unknown.returncode == 5 and "[STEVE-RES-014]" in unknown.stderr
    ok = steve(env, "research", "fetch", "--question", "RQ-001", site.url("/article"))
    assert ok.returncode == 0, ok.stderr
    used = json.loads(steve(env, "research", "scope", "--show", "--json").stdout)["used"]
    account = f"{shown['run']}/RQ-001"
    assert used[account] == {"pages": 1, "bytes": len(site.body("/article"))}
    assert used[f"{shown['run']}/RQ-002"] == {"pages": 0, "bytes": 0}
    text = steve(env, "research", "scope", "--show").stdout
    assert "RQ-001: pages 50" in text and "(used 1 pages," in text


def test_offline_by_config_and_the_config_round_trip(
    env: dict[str, str], site: Site, repo_path: Path
) -> None:
    from steve.config import RepoConfig, ResearchSettings

    path = repo_path / ".steve" / "config"
    with path.open("a") as fh:
        fh.write(f'\n[research]\noffline = true\nsearxng_url = "{site.base}"\n')
    config = RepoConfig.read(path)
    assert config.research == ResearchSettings(True, site.base)
    assert RepoConfig.read(path).to_toml() == config.to_toml()  # kept when rewritten
    miss = steve(env, "research", "fetch", site.url("/article"))
    assert miss.returncode == 5 and "[STEVE-RES-009]" in miss.stderr and site.count() == 0
    online = steve(env, "research", "fetch", "--online", site.url("/article"))
    assert online.returncode == 0 and site.count("/article") == 1
    sx = steve(env, "research", "search", "--provider", "searxng", "kestrel", "--json")
    assert sx.returncode == 0 and json.loads(sx.stdout)["endpoint"] == site.base
    path.write_text(path.read_text() + "\n[research]\n")  # a duplicate table: bad TOML
    bad = steve(env, "research", "fetch", site.url("/article"))
    assert bad.returncode != 0 and "STEVE-" in bad.stderr


@pytest.mark.parametrize(
    "section",
    ['offline = "yes"', 'searxng_url = ""', "searxng_url = 3", 'key = "x"', "research = 1"],
)
def test_a_bad_research_section_is_refused(section: str) -> None:
    import tomllib

    from steve.config import ResearchSettings
    from steve.errors import BadConfig

    table = tomllib.loads(section)
    with pytest.raises(BadConfig):
        ResearchSettings.from_toml(table, Path("config"))
    with pytest.raises(BadConfig):
        ResearchSettings.from_toml("not a table", Path("config"))


def test_fetch_shows_progress_on_a_terminal_only(
    env: dict[str, str], site: Site, tmp_path: Path
) -> None:
    """`steve research fetch` draws its progress on a terminal (pages done of all,
    the rate), prints the same ids either way, and draws nothing with -q."""
    from tests.ptyrun import run_in_pty

    paths = site.add_pages(12)
    shown = run_in_pty(["research", "fetch", *[site.url(p) for p in paths]], env, tmp_path)
    assert shown.code == 0, shown.text
    assert "fetch" in shown.text and "12/12 pages" in shown.text and "/s" in shown.text
    assert len(shown.stdout.decode().splitlines()) == 12
    again = steve(env, "research", "fetch", *[site.url(p) for p in paths])  # no terminal
    assert again.returncode == 0 and "\x1b" not in again.stderr and again.stderr == ""
    assert sorted(again.stdout.splitlines()) == sorted(shown.stdout.decode().splitlines())
    quiet = run_in_pty(["-q", "research", "fetch", site.url(paths[0])], env, tmp_path)
    assert quiet.code == 0 and b"\x1b" not in quiet.terminal, quiet.text
    assert len(quiet.stdout.decode().splitlines()) == 1  # the result is not a friendly line
