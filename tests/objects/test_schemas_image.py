"""Image references in plans (issue 11 item 4): a name alone is refused with the
accepted forms, not a raw regular expression."""

from __future__ import annotations

import pytest

from steve.errors import ManifestInvalid
from steve.objects.schemas.common import validate_body
from steve.objects.schemas.plan import PlanManifest

ID = "sha256:" + "ab" * 32


def plan(image: str) -> dict[str, object]:
    node = {"id": "a", "kind": "run", "command": ["true"], "image": image}
    return {"title": "t", "nodes": [node]}


@pytest.mark.parametrize("image", [ID, f"python@{ID}", f"docker.io/library/python:3.12@{ID}"])
def test_the_documented_forms_are_accepted(image: str) -> None:
    body = validate_body(PlanManifest, plan(image))
    assert isinstance(body, PlanManifest) and body.nodes[0].image == image


@pytest.mark.parametrize("image", ["python:3.12", "python", ID[7:], "sha256:abc", f"@{ID}"])
def test_other_forms_are_refused_with_the_accepted_ones(image: str) -> None:
    with pytest.raises(ManifestInvalid) as info:
        validate_body(PlanManifest, plan(image))
    text = str(info.value)
    assert "nodes[0].image" in text
    assert "sha256:<64 hex>" in text and "name@sha256:<64 hex>" in text
    assert "^(" not in text and "[0-9a-f]" not in text  # no raw regular expression
