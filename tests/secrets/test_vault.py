"""The secrets vault: versions, events without values, external commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from steve.errors import (
    BadSecretCommand,
    BadSecretName,
    SecretCommandFailed,
    SecretNotFound,
    WeakSecretValue,
)
from steve.events import EventLog
from steve.porcelain import secrets as vault
from steve.repo import Repo

VALUE = b"s3ntinel-vault-value-7f3a"


def test_set_list_rm_versions_and_events(repo: Repo) -> None:
    with EventLog.for_repo(repo) as log:
        repo.events.sink = log
        first = vault.set_secret(repo, "DB_PASS", VALUE, now=1000)
        second = vault.set_secret(repo, "DB_PASS", VALUE + b"2", now=1001)
        assert (first.version, second.version) == (1, 2)
        listed = vault.list_secrets(repo)
        assert [(i.name, i.version, i.kind, i.created) for i in listed] == [
            ("DB_PASS", 2, "value", 1001)
        ]
        assert listed[0].who == f"{repo.identity.name} <{repo.identity.email}>"
        vault.remove_secret(repo, "DB_PASS")
        assert vault.list_secrets(repo) == []
        with pytest.raises(SecretNotFound):
            vault.remove_secret(repo, "DB_PASS")
        with pytest.raises(SecretNotFound):
            vault.resolve(repo, ["DB_PASS"])
        # set again after rm: the version goes on (a cache key is never reused)
        assert vault.set_secret(repo, "DB_PASS", VALUE).version == 3
        events = [(e.event_type, e.payload) for e in log.events(event_type="secret.*")]
    assert events == [
        ("secret.set", {"name": "DB_PASS", "version": 1, "kind": "value"}),
        ("secret.set", {"name": "DB_PASS", "version": 2, "kind": "value"}),
        ("secret.removed", {"name": "DB_PASS", "version": 2}),
        ("secret.set", {"name": "DB_PASS", "version": 3, "kind": "value"}),
    ]
    assert vault.resolve(repo, ["DB_PASS"])["DB_PASS"].value == VALUE
    assert VALUE.decode() not in repr(vault.resolve(repo, ["DB_PASS"]))


def test_values_persist_only_inside_the_encrypted_database(repo: Repo, repo_path: Path) -> None:
    vault.set_secret(repo, "TOKEN", VALUE)
    repo.close()
    for path in (repo_path / ".steve").rglob("*"):
        if path.is_file():
            assert VALUE not in path.read_bytes(), path
    from tests.conftest import PASSPHRASE

    with Repo.open(repo_path, passphrase=PASSPHRASE) as again:
        assert vault.resolve(again, ["TOKEN"])["TOKEN"].value == VALUE


def test_the_memory_backend_keeps_the_same_rules(mem_repo: Repo) -> None:
    vault.set_secret(mem_repo, "A", VALUE)
    vault.set_secret(mem_repo, "A", VALUE)
    assert [i.version for i in vault.list_secrets(mem_repo)] == [2]


@pytest.mark.parametrize("name", ["", "1A", "A-B", "a.b", "x" * 65, "A B", "É"])
def test_bad_names_are_refused(mem_repo: Repo, name: str) -> None:
    with pytest.raises(BadSecretName) as err:
        vault.set_secret(mem_repo, name, VALUE)
    assert err.value.code == "STEVE-SECRET-002"


def test_weak_values_are_refused_before_anything_is_stored(mem_repo: Repo) -> None:
    with pytest.raises(WeakSecretValue):
        vault.set_secret(mem_repo, "SHORT", b"abc")
    assert vault.list_secrets(mem_repo) == []


def _py(code: str) -> str:
    return f"{sys.executable} -c '{code}'"


def test_an_external_secret_runs_its_command_at_use_time(mem_repo: Repo, tmp_path: Path) -> None:
    source = tmp_path / "value"
    source.write_bytes(b"first-external-value\n")
    info = vault.set_secret(mem_repo, "EXT", command=f"cat {source}")
    assert (info.kind, info.command) == ("command", f"cat {source}")
    assert vault.resolve(mem_repo, ["EXT"])["EXT"].value == b"first-external-value"
    source.write_bytes(b"rotated-external-value\n")  # read again at each use
    assert vault.resolve(mem_repo, ["EXT"])["EXT"].value == b"rotated-external-value"
    redactor = vault.redactor_for(mem_repo, vault.resolve(mem_repo, ["EXT"]))
    assert redactor.text("x rotated-external-value y") == "x [REDACTED:EXT] y"


def test_the_command_is_not_given_to_a_shell(mem_repo: Repo, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    vault.set_secret(mem_repo, "EXT", command=f"echo value-words; touch {marker}")
    value = vault.resolve(mem_repo, ["EXT"])["EXT"].value
    assert value == f"value-words; touch {marker}".encode()  # echo's arguments, verbatim
    assert not marker.exists()


def test_a_failing_command_is_a_coded_error_without_its_output(mem_repo: Repo) -> None:
    leak = "do-not-show-this-output"
    vault.set_secret(
        mem_repo, "EXT", command=_py(f"import sys; print(\"{leak}\"); sys.exit(3)")
    )
    with pytest.raises(SecretCommandFailed) as err:
        vault.resolve(mem_repo, ["EXT"])
    assert err.value.code == "STEVE-SECRET-004"
    assert "exit status 3" in str(err.value)
    assert leak not in str(err.value) and leak not in err.value.action


def test_a_hanging_command_times_out(mem_repo: Repo) -> None:
    vault.set_secret(mem_repo, "EXT", command=_py("import time; time.sleep(30)"))
    with pytest.raises(SecretCommandFailed, match=r"no answer within 0\.5s"):
        vault.resolve(mem_repo, ["EXT"], timeout_s=0.5)


def test_a_missing_program_is_a_coded_error(mem_repo: Repo) -> None:
    vault.set_secret(mem_repo, "EXT", command="/nonexistent/pass show x")
    with pytest.raises(SecretCommandFailed, match="cannot run"):
        vault.resolve(mem_repo, ["EXT"])


@pytest.mark.parametrize("command", ["", "   ", "pass show 'unterminated"])
def test_unparseable_commands_are_refused_at_set(mem_repo: Repo, command: str) -> None:
    with pytest.raises(BadSecretCommand):
        vault.set_secret(mem_repo, "EXT", command=command)


def test_a_draft_holding_a_vault_value_is_not_frozen(mem_repo: Repo) -> None:
    from steve.errors import SecretInDraft
    from steve.porcelain.freeze import freeze

    draft = {
        "title": "a plan",
        "nodes": [
            {
                "id": "n",
                "kind": "run",
                "command": ["sh", "-c", f"deploy --token {VALUE.decode()}"],
                "image": "sha256:" + "ab" * 32,
            }
        ],
    }
    oid = freeze(mem_repo, "plan", draft, now=1_700_000_000, tz=0)  # no secret yet: frozen
    vault.set_secret(mem_repo, "TOKEN", VALUE)
    with pytest.raises(SecretInDraft) as err:
        freeze(mem_repo, "plan", {**draft, "title": "again"}, now=1_700_000_000, tz=0)
    assert err.value.code == "STEVE-SECRET-007" and VALUE.decode() not in str(err.value)
    assert mem_repo.has_object(oid)
