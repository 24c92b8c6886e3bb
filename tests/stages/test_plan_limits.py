"""A plan's limit policies reach the step and the receipt (issue 12 item 16)."""

from __future__ import annotations

from steve.events import EventLog
from steve.exec import DockerRunner, Engine, ImageRecord
from steve.objects.model import Manifest
from steve.objects.oid import ObjectId
from steve.objects.schemas.receipts import BuildReceipt
from steve.porcelain.build import build
from steve.repo import Repo
from tests.stages.helpers import node, plan_draft, run_with_plan


def test_the_plans_log_and_output_limits_apply_and_are_recorded(
    repo: Repo, engine: Engine, busybox_image: ImageRecord
) -> None:
    draft = plan_draft(
        [
            node("chatty", image=busybox_image.id, command=["sh", "-c", "seq 1 20000"]),
            node(
                "bulky",
                image=busybox_image.id,
                command=["sh", "-c", "head -c 3000000 /dev/zero > out"],
                outputs=["out"],
            ),
        ],
        policies=[{"name": "log_bytes", "value": 1000}, {"name": "output_bytes", "value": 1 << 20}],
    )
    run_id, _ = run_with_plan(repo, draft)
    events = EventLog.for_repo(repo)
    try:
        report = build(repo, DockerRunner(engine), events=events)
        events.flush()
        spooled: dict[tuple[object, object], int] = {}
        for e in events.events(run_id=run_id):
            if e.event_type == "log.chunk":
                key = (e.payload["step"], e.payload["stream"])
                data = e.payload["data"]
                assert isinstance(data, bytes)
                spooled[key] = spooled.get(key, 0) + len(data)
    finally:
        events.close()
    chatty, bulky = report.outcomes
    assert chatty.ok and chatty.receipt is not None
    obj = repo.read_object(chatty.receipt)
    assert isinstance(obj, Manifest)
    receipt = BuildReceipt.model_validate(obj.body)
    stdout = receipt.log("stdout")
    assert stdout is not None and stdout.truncated
    assert len(repo.read_blob(ObjectId.from_hex(stdout.blob))) == 1000
    assert any("stdout truncated" in n for n in receipt.notes)
    # the event log holds no more than the log limit of any stream either
    assert spooled[("chatty", "stdout")] == 1000 and max(spooled.values()) <= 1000
    assert bulky.failure == "StepError.OutputLimitExceeded", bulky.detail
