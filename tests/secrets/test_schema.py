"""The plan's ``secrets`` field and the receipt's: absent when empty (old ids stay)."""

from __future__ import annotations

import pytest

from steve.errors import ManifestInvalid
from steve.objects.schemas import validate
from steve.porcelain.freeze import body_value
from steve.repo import Repo

NODE = {"id": "n", "kind": "run", "command": ["true"], "image": "sha256:" + "ab" * 32}


def test_a_plan_without_secrets_keeps_the_body_it_had() -> None:
    plan = validate("plan", {"title": "t", "nodes": [NODE]})
    assert "secrets" not in body_value(plan)["nodes"][0]


def test_a_plan_with_secrets_names_them_and_needs_the_grant() -> None:
    draft = {
        "title": "t",
        "nodes": [{**NODE, "secrets": ["API_KEY"]}],
        "grants": [{"node": "n", "capability": "secrets", "reason": "calls the API"}],
    }
    assert body_value(validate("plan", draft))["nodes"][0]["secrets"] == ["API_KEY"]
    with pytest.raises(ManifestInvalid) as err:
        validate("plan", {**draft, "grants": []})
    assert err.value.problems == [
        ("nodes[0].secrets", err.value.problems[0][1])
    ] and err.value.problems[0][1].startswith("grant_required")


@pytest.mark.parametrize(
    ("secrets", "env", "rule"),
    [(["A_B", "A_B"], {}, "unique"), (["TOKEN"], {"TOKEN": "x"}, "secret_env"),
     (["bad-name"], {}, "")],
)
def test_bad_secret_lists_are_refused(secrets: list[str], env: dict[str, str], rule: str) -> None:
    draft = {
        "title": "t",
        "nodes": [{**NODE, "secrets": secrets, "env": env}],
        "grants": [{"node": "n", "capability": "secrets", "reason": "r"}],
    }
    with pytest.raises(ManifestInvalid) as err:
        validate("plan", draft)
    assert any(r.startswith(rule) for _, r in err.value.problems)


def test_an_old_plan_verifies_after_the_field_was_added(mem_repo: Repo) -> None:
    from steve.porcelain.freeze import freeze
    from steve.porcelain.verify import verify

    oid = freeze(mem_repo, "plan", {"title": "t", "nodes": [NODE]}, now=1_700_000_000, tz=0)
    assert verify(mem_repo, oid).ok
