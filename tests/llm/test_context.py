"""Context assembly: within the budget, newest first, what was left out, lazily."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from steve.llm.context import Piece, assemble, blob_tail, manifest_history, upper_tokens
from steve.objects.model import CHUNK_SIZE, Manifest, ObjectType
from steve.objects.oid import ObjectId
from steve.repo import Repo


@given(st.lists(st.lists(st.text(max_size=30), max_size=6), max_size=4), st.integers(0, 200))
def test_assembly_fits_the_budget_and_accounts_for_every_piece(
    sources: list[list[str]], budget: int
) -> None:
    pieces = [
        [Piece.of(f"s{i}p{j}", t) for j, t in enumerate(src)] for i, src in enumerate(sources)
    ]
    out = assemble(pieces, budget)
    assert out.tokens <= budget
    assert out.tokens == sum(upper_tokens(t) for _, t in out.parts)
    labels = out.included + [x.label for x in out.left_out]
    assert sorted(labels) == sorted(p.label for src in pieces for p in src)
    order = [p.label for src in pieces for p in src if p.label in out.included]
    assert out.included == order  # kept in source order (newest first within each)


def test_nothing_is_loaded_that_cannot_fit_and_the_report_is_bounded() -> None:
    loaded: list[str] = []

    def endless() -> Iterator[Piece]:
        n = 0
        while True:
            n += 1
            label = f"piece {n}"
            yield Piece(label, 100, lambda label=label: loaded.append(label) or "x" * 100)

    out = assemble([endless()], 250, report_limit=10)
    assert out.included == ["piece 1", "piece 2"]
    assert loaded == ["piece 1", "piece 2"]  # the rest were never read
    assert len(out.left_out) == 10 and out.more_left_out
    assert out.left_out[0].tokens == 100


def _manifest(repo: Repo, parent: ObjectId | None, n: int) -> ObjectId:
    body = {"title": f"receipt {n}", "note": "y" * 50}
    return repo.write(
        Manifest(ObjectType.RESEARCH, 1, (parent,) if parent else (), (), 1700000000 + n, 0, body)
    )


def test_history_is_walked_newest_first_in_batches(repo: Repo) -> None:
    head = None
    for n in range(150):  # more than two index batches
        head = _manifest(repo, head, n)
    assert head is not None
    pieces = manifest_history(repo, head)
    out = assemble([pieces], 3 * upper_tokens(_text_of(repo, head)))
    assert len(out.included) == 3
    assert out.parts[0][1].startswith(f"research {head.hex}")
    assert "receipt 149" in out.parts[0][1] and "receipt 147" in out.parts[2][1]
    everything = list(manifest_history(repo, head))
    assert len(everything) == 150


def _text_of(repo: Repo, oid: ObjectId) -> str:
    from steve.llm.context import manifest_text

    return manifest_text(repo, oid)


def test_blob_tail_reads_the_end_of_a_chunked_log(repo: Repo) -> None:
    data = b"a" * CHUNK_SIZE + b"b" * CHUNK_SIZE + b"the end\n"
    oid = repo.write_blob(data)
    piece = blob_tail(repo, oid, "log", max_bytes=100)
    assert piece.size == 100
    assert piece.load() == ("b" * 92) + "the end\n"


def test_run_sources_give_the_run_records_then_the_newest_logs(repo: Repo) -> None:
    from steve.llm.context import run_sources
    from steve.objects.schemas import validate

    design = repo.write(
        Manifest(ObjectType.DESIGN, 1, (), (), 1700000000, 0, {"title": "the design"})
    )
    repo.update_ref("refs/runs/r1/design", design)
    parent: ObjectId | None = None
    for n in range(2):
        out = repo.write_blob(f"stdout of build {n}\n".encode())
        err = repo.write_blob(f"stderr of build {n}\n".encode())
        body = {
            "plan": design.hex,
            "node": "a",
            "action_key": out.hex,
            "image": "sha256:" + "ab" * 32,
            "command": ["make"],
            "exit_status": 0,
            "started_at": 10,
            "finished_at": 11,
            "logs": [{"stream": "stdout", "blob": out.hex}, {"stream": "stderr", "blob": err.hex}],
        }
        validate("build_receipt", body)
        parent = repo.write(
            Manifest(
                ObjectType.BUILD_RECEIPT,
                2,
                (parent,) if parent else (),
                (),
                1700000100 + n,
                0,
                body,
            )
        )
    assert parent is not None
    repo.update_ref("refs/runs/r1/build_receipt", parent)
    first = repo.manifest_parents(parent)[0]
    out_ctx = assemble(run_sources(repo, "r1"), 10_000)
    labels = out_ctx.included
    assert len(labels) == 7 and not out_ctx.left_out
    assert labels[0].startswith(f"design {design.short()}")
    assert labels[1].startswith(f"build_receipt {parent.short()}")
    assert labels[2].startswith(f"build_receipt {first.short()}")
    assert labels[3:] == [
        f"stdout of {parent.short()}",
        f"stderr of {parent.short()}",
        f"stdout of {first.short()}",
        f"stderr of {first.short()}",
    ]
    texts = [t for _, t in out_ctx.parts]
    assert texts[3] == "stdout of build 1\n" and texts[-1] == "stderr of build 0\n"
    small = assemble(run_sources(repo, "r1"), 72)  # only the four logs fit (18 each)
    assert small.tokens == 72 and small.included == labels[3:]
    assert [x.label for x in small.left_out] == labels[:3]
