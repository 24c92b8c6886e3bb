"""The signer's own record of its newest checkpoint (outside the repository) under
attack by someone holding only the repository key: a cut log whose seals and
checkpoints were deleted must still fail on the signer's machine, through
`steve events verify` and `steve fsck --events`, even when the attacker gives the
log a new id so the record kept for the old id is not looked up."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from steve.errors import EXIT_CORRUPT
from steve.events.signing import IdentityInfo, SigningKey
from steve.repo import Repo
from tests.cli.conftest import PASSPHRASE, Invoke
from tests.events.test_signing import rechain, unlocked


def cut_and_unseal(repo_path: Path, keep: int, *, new_log_id: bool) -> None:
    """Keep events 1..``keep``, delete every seal and checkpoint (the repository key's
    holder can, the triggers dropped), optionally give the log a fresh id."""
    key = Repo.derive_key(repo_path, PASSPHRASE)
    conn = unlocked(repo_path / ".steve" / "events.db", key)
    conn.execute("DELETE FROM events WHERE seq > ?", (keep,))
    conn.execute("DELETE FROM segments")
    conn.execute("DELETE FROM checkpoints")
    rechain(conn)
    conn.execute("UPDATE head SET segment_first = 1, segment_bytes = 0 WHERE id = 1")
    if new_log_id:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'log_id'", (uuid.uuid4().hex,))
    conn.close()


def signed_log(invoke: Invoke, n: int) -> None:
    assert invoke("events", "pin-key").exit_code == 0
    for i in range(n):
        invoke("events", "append", "--type", "a.b", "--payload", json.dumps({"i": i}))
    sealed = invoke("events", "seal")
    assert sealed.exit_code == 0, sealed.stderr


@pytest.mark.parametrize("new_log_id", [False, True], ids=["same-log-id", "new-log-id"])
def test_a_cut_unsealed_log_fails_verify_on_the_signers_machine(
    invoke: Invoke, cli_repo: Path, signing_identity: IdentityInfo, new_log_id: bool
) -> None:
    signed_log(invoke, 12)
    assert invoke("events", "verify").exit_code == 0
    cut_and_unseal(cli_repo, 5, new_log_id=new_log_id)
    out = invoke("events", "verify")
    out.assert_error(EXIT_CORRUPT, "STEVE-EVT-003")
    invoke("fsck", "--events").assert_error(EXIT_CORRUPT, "STEVE-FSCK-001")


def test_a_new_log_id_alone_fails_on_the_signers_machine(
    invoke: Invoke, cli_repo: Path, signing_identity: IdentityInfo
) -> None:
    """Nothing cut: only the id changed and the (now unverifiable) checkpoints dropped."""
    signed_log(invoke, 4)
    cut_and_unseal(cli_repo, 4, new_log_id=True)
    out = invoke("events", "verify")
    out.assert_error(EXIT_CORRUPT, "STEVE-EVT-003")
    assert "witnessed checkpoint of seq 4" in out.stdout.decode()


def test_a_deleted_event_log_fails_on_the_signers_machine(
    invoke: Invoke, cli_repo: Path, signing_identity: IdentityInfo
) -> None:
    """events.db removed (no key needed): the next command starts a new log, with a
    new id; the signer's record kept under the repository still names what it signed."""
    signed_log(invoke, 3)
    for path in (cli_repo / ".steve").glob("events.db*"):
        path.unlink()
    assert invoke("events", "append", "--type", "a.b").exit_code == 0
    out = invoke("events", "verify")
    out.assert_error(EXIT_CORRUPT, "STEVE-EVT-003")
    assert "witnessed checkpoint of seq 3" in out.stdout.decode()


def repin(repo_path: Path, public_key: bytes | None) -> None:
    """Edit .steve/config's [events] public_key (a plain file: no key needed)."""
    config = Repo.read_config(repo_path)
    config.with_events_key(public_key).write(repo_path / ".steve" / "config")


def test_unpinning_the_key_does_not_silence_the_signers_record(
    invoke: Invoke, cli_repo: Path, signing_identity: IdentityInfo
) -> None:
    signed_log(invoke, 6)
    cut_and_unseal(cli_repo, 2, new_log_id=False)
    repin(cli_repo, None)
    out = invoke("events", "verify")
    out.assert_error(EXIT_CORRUPT, "STEVE-EVT-003")
    assert "witnessed checkpoint of seq 6" in out.stdout.decode()
    invoke("fsck", "--events").assert_error(EXIT_CORRUPT, "STEVE-FSCK-001")


def test_pinning_another_key_fails_on_the_signers_machine(
    invoke: Invoke, cli_repo: Path, signing_identity: IdentityInfo
) -> None:
    signed_log(invoke, 3)
    repin(cli_repo, SigningKey.generate().public_key)
    out = invoke("events", "verify")
    out.assert_error(EXIT_CORRUPT, "STEVE-EVT-003")
    assert "this identity" in out.stderr and "signed this log up to seq 3" in out.stderr
    invoke("fsck", "--events").assert_error(EXIT_CORRUPT, "STEVE-EVT-003")


def test_an_untouched_unpinned_log_verifies_with_the_identitys_key(
    invoke: Invoke, cli_repo: Path, signing_identity: IdentityInfo
) -> None:
    signed_log(invoke, 3)
    repin(cli_repo, None)
    out = invoke("events", "verify")
    assert out.exit_code == 0, out.stderr
    assert "checked against this identity's key" in out.stderr
