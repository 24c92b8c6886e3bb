"""Token budgets: per project, run, stage and plan node (F-LLM-004).

A budget is a limit on the tokens (input + output, as the provider reports
them) spent by the exchanges charged to a scope.  Scopes, as
``steve budget set`` takes them:

``project``        every exchange of the repository
``run``            each run (the default for every run)
``run:RUN_ID``     one run (overrides ``run``)
``stage``          each stage of each run
``stage:STAGE``    one stage (e.g. ``stage:PLAN``) of each run (overrides ``stage``)
``node``           each plan node of each run (a node's ``budgets.tokens`` in the
                   frozen plan overrides it; the caller passes it in)

Limits and the running totals live in the encrypted database as derived
data spaces ``llm-budget`` (limits, set by hand: not rebuildable) and
``llm-usage`` (totals; each charge is also a ``budget.charged`` event).  A
request is checked *before* it is sent against every scope it falls in,
with an upper estimate of what it can cost: its input tokens (an upper
estimate, :func:`steve.llm.provider.estimate_tokens`, or the provider's
count) plus its ``max_tokens``.  After the answer the real usage is
charged in the same transaction that records the exchange.  Two processes
checking at the same moment may both pass and together overrun a limit by
at most one request each; the charge itself is atomic.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from steve.errors import BadBudgetScope, BudgetExceeded, InvalidInput
from steve.repo import Repo, RepoTransaction

LIMITS = "llm-budget"
USAGE = "llm-usage"
MAX_TOKENS = 2**62

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_scope(scope: str) -> str:
    """``scope`` if it is a limit scope ``steve budget set`` accepts."""
    if scope in ("project", "run", "stage", "node"):
        return scope
    kind, sep, name = scope.partition(":")
    if sep and kind in ("run", "stage") and _NAME.fullmatch(name):
        return f"{kind}:{name.upper()}" if kind == "stage" else scope
    raise BadBudgetScope(scope)


@dataclass(frozen=True, slots=True)
class Charge:
    """Where one exchange is charged: the run, stage and node it belongs to."""

    run_id: str | None = None
    stage: str | None = None
    node: str | None = None
    node_budget: int | None = None  # the node's budgets.tokens from the plan (0/None: none)

    def usage_keys(self) -> list[str]:
        keys = ["project"]
        if self.run_id:
            keys.append(f"run:{self.run_id}")
            if self.stage:
                keys.append(f"stage:{self.run_id}:{self.stage.upper()}")
            if self.node:
                keys.append(f"node:{self.run_id}:{self.node}")
        return keys


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One scope an exchange falls in: its usage key, limit (None: unlimited), usage."""

    scope: str
    limit: int | None
    used: int

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


def _int(raw: bytes | None) -> int:
    return 0 if raw is None else int(raw.decode("ascii"))


class Budgets:
    """The budgets of one repository."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    # --- limits ---------------------------------------------------------------------

    def limit(self, scope: str) -> int | None:
        raw = self.repo.get_derived(LIMITS, check_scope(scope).encode())
        return None if raw is None else _int(raw)

    def limits(self) -> dict[str, int]:
        return {k.decode(): _int(v) for k, v in self.repo.iter_derived(LIMITS)}

    def set_limit(self, scope: str, tokens: int | None) -> None:
        """Set (None: remove) the limit of ``scope``; recorded as a ``budget.set`` event."""
        scope = check_scope(scope)
        if tokens is not None and not 0 <= tokens <= MAX_TOKENS:
            raise InvalidInput("invalid token budget", f"{tokens} is outside 0..{MAX_TOKENS}")
        with self.repo.transaction() as tx:
            if tokens is None:
                tx.delete_derived(LIMITS, scope.encode())
            else:
                tx.put_derived(LIMITS, scope.encode(), str(tokens).encode())
            tx.emit("budget.set", {"scope": scope, "tokens": tokens})

    def used(self, key: str) -> int:
        return _int(self.repo.get_derived(USAGE, key.encode()))

    def iter_usage(self) -> Iterator[tuple[str, int]]:
        """Every usage total (``project``, ``run:R``, ``stage:R:S``, ``node:R:N``), streamed."""
        for k, v in self.repo.iter_derived(USAGE):
            yield k.decode(), _int(v)

    # --- what applies to an exchange ----------------------------------------------------

    def lines(self, charge: Charge) -> list[BudgetLine]:
        """Every scope ``charge`` falls in, with its limit and usage so far."""
        limits = self.limits()
        out = [BudgetLine("project", limits.get("project"), self.used("project"))]
        if charge.run_id:
            run = charge.run_id
            out.append(
                BudgetLine(
                    f"run:{run}",
                    limits.get(f"run:{run}", limits.get("run")),
                    self.used(f"run:{run}"),
                )
            )
            if charge.stage:
                stage = charge.stage.upper()
                key = f"stage:{run}:{stage}"
                limit = limits.get(f"stage:{stage}", limits.get("stage"))
                out.append(BudgetLine(key, limit, self.used(key)))
            if charge.node:
                key = f"node:{run}:{charge.node}"
                limit = charge.node_budget or limits.get("node")
                out.append(BudgetLine(key, limit, self.used(key)))
        return out

    def check(self, charge: Charge, needed: int) -> list[BudgetLine]:
        """Raise BudgetExceeded (nothing is sent) if ``needed`` more tokens would take any
        scope of ``charge`` over its limit; else return the lines checked."""
        lines = self.lines(charge)
        for line in lines:
            if line.limit is not None and line.used + needed > line.limit:
                raise BudgetExceeded(line.scope, line.limit, line.used, needed)
        return lines

    def has_limits(self) -> bool:
        return next(iter(self.repo.iter_derived(LIMITS)), None) is not None

    def charge(self, tx: RepoTransaction, charge: Charge, tokens: int) -> dict[str, int]:
        """Add ``tokens`` to every usage total of ``charge`` inside ``tx``; returns the
        new totals (the caller's ``budget.charged`` event carries them)."""
        totals: dict[str, int] = {}
        for key in charge.usage_keys():
            total = self.used(key) + tokens  # read inside the write transaction
            tx.put_derived(USAGE, key.encode(), str(total).encode())
            totals[key] = total
        return totals
