"""Approvals against a model (hypothesis): any sequence of requests, answers, uses and
clock moves leaves every request in the state the model predicts, and the gate is
offered exactly the approved, unexpired, unused ones."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from steve.errors import ApprovalDecided, ApprovalExpired, ApprovalUsed
from steve.porcelain import approvals
from steve.porcelain.approvals import State
from steve.porcelain.gate import Action, ActionKind
from steve.repo import Repo

ACTIONS = [Action.of(ActionKind.DEPLOY, f"/t{i}", {"i": i}) for i in range(3)]


@dataclass
class Model:
    digest: object
    expires: int
    answer: bool | None = None
    used: bool = False

    def state(self, now: int) -> State:
        if self.used:
            return State.USED
        if self.answer is False:
            return State.DENIED
        if now >= self.expires:
            return State.EXPIRED
        return State.APPROVED if self.answer else State.PENDING


ops = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.integers(0, 2), st.integers(1, 30)),
        st.tuples(st.just("answer"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("use"), st.integers(0, 5), st.just(0)),
        st.tuples(st.just("tick"), st.integers(1, 20), st.just(0)),
    ),
    max_size=14,
)


@settings(max_examples=60)
@given(ops)
def test_approvals_follow_the_model(steps: list[tuple[str, int, object]]) -> None:
    repo = Repo.memory()
    now = 1000
    ids: list[str] = []
    model: dict[str, Model] = {}
    for op, n, arg in steps:
        if op == "tick":
            now += n
        elif op == "request":
            assert isinstance(arg, int)
            action = ACTIONS[n]
            got, created = approvals.request(repo, action, now=now, actor="t", ttl=arg)
            pending = [
                i for i, m in model.items()
                if m.digest == action.digest and m.state(now) is State.PENDING
            ]
            assert created == (not pending)
            if created:
                ids.append(got.id.hex)
                model[got.id.hex] = Model(action.digest, now + arg)
            else:
                assert got.id.hex == pending[0]
        elif ids:
            ident = ids[n % len(ids)]
            m = model[ident]
            if op == "answer":
                before = m.state(now)
                try:
                    approvals.answer(
                        repo, ident, approve=bool(arg), now=now, actor="a", reason=None
                    )
                    assert before is State.PENDING
                    m.answer = bool(arg)
                except ApprovalExpired:
                    assert before is State.EXPIRED
                except ApprovalDecided:
                    assert before in (State.APPROVED, State.DENIED, State.USED)
            else:
                before = m.state(now)
                try:
                    approvals.check_usable(repo, ident, now=now)
                    with repo.transaction() as tx:
                        approvals.mark_used(repo, tx, ident, now=now, actor="t")
                    assert before is State.APPROVED
                    m.used = True
                except (ApprovalUsed, ApprovalExpired, ApprovalDecided):
                    assert before is not State.APPROVED
        listed = {a.id.hex: a.state for a in approvals.list_approvals(repo, now=now)}
        assert listed == {i: m.state(now) for i, m in model.items()}
        granted = {g.id for g in approvals.granted(repo, now=now)}
        assert granted == {i for i, m in model.items() if m.state(now) is State.APPROVED}
