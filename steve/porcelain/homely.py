"""Wellbeing nudges (F-HOME-003/004): a long session, a late hour, a long run of
failed tests.

The CLI calls :func:`check_nudges` after a command that ran on a terminal; it
updates the session's bookkeeping (kept in ``steve.db``'s meta table, so
nothing readable lands outside the encrypted database) and records each nudge
due as a ``homely.nudge`` event, all in one transaction, and returns the
nudges for the CLI to print.  Each kind is shown at most once in its period
(:data:`QUIET_PERIOD`), so a nudge is a rare, gentle thing.  This module never
prints and never reads the clock: ``now`` and the local time are parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from steve.config import HomelySettings
from steve.repo import CONFIG_NAME, STEVE_DIR, Repo, lock_repository

__all__ = ["HomelySettings", "Nudge", "check_nudges", "set_setting", "settings_of"]

SESSION_KEY = "homely.session"
"""Meta key: ``START LAST`` (unix seconds) of the current session."""
STREAK_KEY = "homely.test_failures"
"""Meta key: failed ``steve test`` runs in a row (seen on a terminal)."""
NUDGED_KEY = "homely.nudged."
"""Meta key prefix: when each kind of nudge was last shown."""
SESSION_GAP = 30 * 60
"""A pause longer than this (seconds) ends a session."""
QUIET_PERIOD = {"late": 8 * 3600, "session": 0, "failures": 0}
"""After a nudge of a kind, the seconds before that kind may come again (``session``:
one session length; ``failures``: the next multiple of the streak)."""
LATE_UNTIL = 5
"""The late hours end at 05:00."""
LATE_AFTER = 30 * 60
"""A late-hour nudge waits until the session has lasted this long (seconds): it is for
someone working late, not for someone who just sat down."""


@dataclass(frozen=True, slots=True)
class Nudge:
    kind: str
    """``late``, ``session`` or ``failures`` (the catalogue's ``homely.KIND``)."""
    facts: dict[str, int] = field(default_factory=dict)


def settings_of(repo: Repo) -> HomelySettings:
    """The repository's ``[homely]`` settings (defaults when the section is absent)."""
    config = repo.config
    found = None if config is None else config.homely
    return found if found is not None else HomelySettings()


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _is_late(hour: int, late_hour: int) -> bool:
    if late_hour < LATE_UNTIL:  # e.g. 2: late from 02:00 to 05:00
        return late_hour <= hour < LATE_UNTIL
    return hour >= late_hour or hour < LATE_UNTIL


def check_nudges(
    repo: Repo,
    settings: HomelySettings,
    *,
    now: int,
    hour: int,
    minute: int,
    tests_failed: bool | None = None,
) -> list[Nudge]:
    """The nudges due now (none when ``settings.nudges`` is off), each recorded as a
    ``homely.nudge`` event; the session bookkeeping is updated either way.
    ``tests_failed``: the outcome of the ``steve test`` this command ran (None: the
    command was not a test)."""
    if settings.nudges == "off":
        return []
    start_text, _, last_text = (repo.get_meta(SESSION_KEY) or "").partition(" ")
    start, last = _int(start_text, now), _int(last_text, now)
    if now - last > SESSION_GAP or now < last:
        start = now
    streak = _int(repo.get_meta(STREAK_KEY))
    if tests_failed is not None:
        streak = streak + 1 if tests_failed else 0
    nudged = {kind: _int(repo.get_meta(NUDGED_KEY + kind), -1) for kind in QUIET_PERIOD}

    due: list[Nudge] = []
    if (
        _is_late(hour, settings.late_hour)
        and now - start >= LATE_AFTER
        and (nudged["late"] < 0 or now - nudged["late"] >= QUIET_PERIOD["late"])
    ):
        due.append(Nudge("late", {"hour": hour, "minute": minute}))
    length = settings.session_hours * 3600
    if now - start >= length and (nudged["session"] < start or now - nudged["session"] >= length):
        due.append(Nudge("session", {"hours": (now - start) // 3600}))
    if tests_failed and streak >= settings.failure_streak and streak % settings.failure_streak == 0:
        due.append(Nudge("failures", {"count": streak}))

    with repo.transaction() as tx:
        tx.set_meta(SESSION_KEY, f"{start} {now}")
        if tests_failed is not None:
            tx.set_meta(STREAK_KEY, str(streak) if streak else None)
        for nudge in due:
            tx.set_meta(NUDGED_KEY + nudge.kind, str(now))
            tx.emit("homely.nudge", {"kind": nudge.kind, **nudge.facts})
    return due


def set_setting(root: Path, key: str, value: str) -> HomelySettings:
    """Set ``[homely] key = value`` in the repository config at ``root`` (the rest of
    the file, [kdf] included, is written back as read), under the repository's shared
    lock so a rekey cannot interleave; returns the new settings."""
    config = Repo.read_config(root)  # NotARepository first
    HomelySettings.check(key, value)
    lock = lock_repository(root / STEVE_DIR, 30.0)
    try:
        config = Repo.read_config(root)
        current = config.homely if config.homely is not None else HomelySettings()
        updated = current.with_value(key, value)
        config.with_homely(updated).write(root / STEVE_DIR / CONFIG_NAME)
    finally:
        lock.release()
    return updated
