"""The model commands: steve llm ask|log|use and steve budget show|set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steve.config import LlmSettings
from steve.errors import UnknownProvider
from steve.llm.registry import choose
from steve.repo import Repo
from tests.cli.conftest import Invoke


def test_ask_records_and_replay_answers_the_same(invoke: Invoke) -> None:
    first = invoke("llm", "ask", "--json", "steve-selftest: are you there?")
    assert first.exit_code == 0, first.stderr
    a = json.loads(first.stdout)
    assert a["provider"] == "scripted" and a["text"] and not a["replayed"]
    again = invoke("llm", "ask", "--llm", "replay", "--json", "steve-selftest: are you there?")
    b = json.loads(again.stdout)
    assert (b["request"], b["response"], b["replayed"]) == (a["request"], a["response"], True)
    streamed = invoke("llm", "ask", "--llm", "replay:scripted", "steve-selftest: are you there?")
    assert streamed.stdout.decode() == a["text"] + "\n"
    assert f"request {a['request']}" in streamed.stderr
    invoke("llm", "ask", "--llm", "replay", "never asked").assert_error(5, "STEVE-LLM-007")
    log = invoke("llm", "log", "--json")
    assert [json.loads(line)["request"] for line in log.lines] == [a["request"]]


def test_budget_set_show_and_refusal(invoke: Invoke) -> None:
    assert invoke("budget", "set", "run", "5000").exit_code == 0
    assert invoke("budget", "set", "stage:plan", "10").exit_code == 0
    invoke("budget", "set", "nodes", "10").assert_error(6, "STEVE-BUDGET-002")
    invoke("budget", "set", "project", "lots").assert_error(6, "STEVE-INPUT-001")
    refused = invoke("llm", "ask", "--run", "r1", "--stage", "PLAN", "steve-selftest")
    refused.assert_error(12, "STEVE-BUDGET-001")
    ok = invoke("llm", "ask", "--run", "r1", "--stage", "DESIGN", "steve-selftest")
    assert ok.exit_code == 0, ok.stderr
    rows = [json.loads(line) for line in invoke("budget", "show", "--json").lines]
    limits = {r["scope"]: r["tokens"] for r in rows if r["kind"] == "limit"}
    used = {r["scope"]: r["tokens"] for r in rows if r["kind"] == "used"}
    assert limits == {"run": 5000, "stage:PLAN": 10}
    assert used.keys() == {"project", "run:r1", "stage:r1:DESIGN"}
    assert len(set(used.values())) == 1 and next(iter(used.values())) > 0
    assert invoke("budget", "set", "stage:PLAN", "none").exit_code == 0
    assert "stage:PLAN" not in invoke("budget", "show").stdout.decode()


def test_llm_use_writes_the_config_without_keys(invoke: Invoke, cli_repo: Path) -> None:
    assert invoke("llm", "use").stdout.decode().startswith("scripted ")
    out = invoke(
        "llm", "use", "openai", "--model", "llama3.2", "--base-url", "http://127.0.0.1:9/v1"
    )
    assert out.exit_code == 0, out.stderr
    cfg = Repo.read_config(cli_repo)
    assert cfg.llm == LlmSettings("openai", "llama3.2", "http://127.0.0.1:9/v1")
    assert (
        invoke("llm", "use")
        .stdout.decode()
        .startswith("openai (requests name openai) model=llama3.2")
    )
    invoke("llm", "ask", "hi").assert_error(4, "STEVE-LLM-009")  # no OPENAI_API_KEY
    invoke("llm", "use", "claude").assert_error(6, "STEVE-LLM-008")
    assert invoke("llm", "use", "--clear").exit_code == 0
    assert Repo.read_config(cli_repo).llm is None
    path = cli_repo / ".steve" / "config"
    path.write_text(path.read_text() + '\n[llm]\nprovider = "openai"\napi_key = "sk-x"\n')
    bad = invoke("llm", "use")
    bad.assert_error(3, "STEVE-REPO-003")
    assert "never stored" in bad.stderr


@pytest.mark.parametrize(
    ("flag", "env", "config", "expect"),
    [
        (None, None, None, ("scripted", "scripted", "scripted", "default")),
        (None, "openai", None, ("openai", "openai", "gpt-4o-mini", "STEVE_LLM")),
        (
            "anthropic",
            "openai",
            LlmSettings("openai", "m"),
            ("anthropic", "anthropic", "claude-sonnet-4-5", "--llm"),
        ),
        (None, None, LlmSettings("openai", "m"), ("openai", "openai", "m", "[llm] provider")),
        ("replay", None, LlmSettings("openai", "m"), ("replay", "openai", "m", "--llm")),
        ("replay", None, None, ("replay", "scripted", "scripted", "--llm")),
        ("replay:anthropic", None, None, ("replay", "anthropic", "claude-sonnet-4-5", "--llm")),
    ],
)
def test_the_provider_is_chosen_by_flag_env_config_default(
    flag: str | None, env: str | None, config: LlmSettings | None, expect: tuple[str, ...]
) -> None:
    c = choose(flag=flag, env=env, settings=config)
    assert (c.name, c.target, c.model, c.source) == expect


@pytest.mark.parametrize("name", ["claude", "replay:replay", "openai:x", "replay:"])
def test_unknown_provider_names_are_refused(name: str) -> None:
    with pytest.raises(UnknownProvider):
        choose(flag=name)


def test_a_vault_secret_pasted_into_a_prompt_is_redacted_before_anything(
    invoke: Invoke, cli_repo: Path
) -> None:
    value = "vault-value-9f3c2a7b1e"
    stored = invoke("secret", "set", "DB_PASSWORD", input=value + "\n")
    assert stored.exit_code == 0, stored.stderr
    out = invoke("llm", "ask", "--json", f"steve-selftest: the password is {value}")
    assert out.exit_code == 0, out.stderr
    ex = json.loads(out.stdout)
    with Repo.open(cli_repo, passphrase="pw") as repo:
        from steve.llm import record
        from steve.objects.oid import ObjectId

        found = record.find(repo, ObjectId.from_hex(ex["request"]))
        assert found is not None
        text = found.request.messages[0].text
        assert value not in text and "[REDACTED:DB_PASSWORD]" in text
        assert value.encode() not in repo.read_blob(found.request_oid)


def test_show_decodes_an_exchange_from_any_of_its_ids(invoke: Invoke) -> None:
    ex = json.loads(invoke("llm", "ask", "--json", "--system", "sys", "steve-selftest").stdout)
    for rev in (ex["exchange"], ex["request"], ex["request"][:12], f"refs/llm/{ex['request']}"):
        shown = invoke("llm", "show", rev)
        assert shown.exit_code == 0, shown.stderr
        value = json.loads(shown.stdout)
        assert value["exchange"] == ex["exchange"]
        assert value["request"]["system"] == "sys"
        assert value["response"]["content"][0]["text"] == ex["text"]
    alone = json.loads(invoke("llm", "show", ex["response"]).stdout)
    assert set(alone) == {"response"}
    blob = invoke("hash-object", "-w", "--stdin", input=b"plain text").stdout.decode().strip()
    invoke("llm", "show", blob).assert_error(6, "STEVE-OBJ-004")
    invoke("llm", "show", "HEAD").assert_error(5, "STEVE-REV-001")


def test_fallback_to_the_record_when_the_server_is_gone(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.llm.servers import KEY, AnthropicServer

    server = AnthropicServer("recorded answer").start()
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    try:
        first = invoke("llm", "ask", "--llm", "anthropic", "--json", "hello")
        assert first.exit_code == 0, first.stderr
    finally:
        server.stop()
    down = invoke("llm", "ask", "--llm", "anthropic", "hello")
    down.assert_error(11, "STEVE-LLM-001")
    monkeypatch.setenv("STEVE_LLM_FALLBACK", "recorded")
    again = invoke("llm", "ask", "--llm", "anthropic", "--json", "hello")
    assert again.exit_code == 0, again.stderr
    a, b = json.loads(first.stdout), json.loads(again.stdout)
    assert (b["response"], b["replayed"], b["text"]) == (a["response"], True, "recorded answer")
    invoke("llm", "ask", "--llm", "anthropic", "never recorded").assert_error(11, "STEVE-LLM-001")
    monkeypatch.setenv("STEVE_LLM_FALLBACK", "sometimes")
    invoke("llm", "ask", "hello").assert_error(6, "STEVE-LLM-013")


def test_llm_use_refuses_values_it_could_not_use(invoke: Invoke, cli_repo: Path) -> None:
    invoke("llm", "use", "openai", "--base-url", "localhost:11434").assert_error(6, "STEVE-LLM-013")
    invoke("llm", "use", "openai", "--model", "a\nb").assert_error(6, "STEVE-LLM-013")
    assert Repo.read_config(cli_repo).llm is None
