"""Issue 12, item 1: sealed history cannot be cut, unsigned stretches are reported, and
the signing key is not reachable with the repository key.

Tampering is done as an attacker holding the repository key would: a raw SQLCipher
connection (no STEVE code), triggers dropped, hashes recomputed, the head row
rewritten to agree with the forged chain.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from steve.errors import (
    EXIT_CORRUPT,
    EXIT_KEY,
    EXIT_USAGE,
    EventChainBroken,
    EventLogUnsigned,
    IdentityDamaged,
    IdentityInsecure,
    NoSigningIdentity,
    WrongSigningPassphrase,
)
from steve.events import EventLog, Rotation
from steve.events.model import GENESIS, canonical_bytes, chain_hash
from steve.events.signing import (
    IdentityInfo,
    SigningKey,
    create_identity,
    load_signing_key,
    read_identity,
)
from steve.events.store import EventStore, checkpoint_message
from steve.events.verify import ProblemKind
from steve.repo import Repo
from tests.cli.conftest import PASSPHRASE, Invoke
from tests.conftest import make_fast_kdf
from tests.events.conftest import raw_connect

KEY = bytes(range(32))
TABLES = ("events", "segments", "checkpoints", "signing_keys")


def unlocked(path: Path, key: bytes = KEY) -> Any:
    """A raw connection with every append-only trigger dropped (the attacker's view)."""
    conn = raw_connect(path, key)
    for table in TABLES:
        conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    return conn


def rechain(conn: Any) -> None:
    """Recompute every prev_hash and hash and point the head at the new tip, as a
    forger does after editing or deleting events."""
    rows = conn.execute(
        "SELECT seq, time, level, event_type, run_id, correlation_id, causation_id, actor, "
        "payload FROM events ORDER BY seq"
    ).fetchall()
    prev = GENESIS
    for row in rows:
        h = chain_hash(prev, canonical_bytes(*row[:8], bytes(row[8])))
        conn.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, row[0]))
        prev = h
    last = rows[-1][0] if rows else 0
    conn.execute("UPDATE head SET seq = ?, hash = ? WHERE id = 1", (last, prev))


def forge_segments(conn: Any, log_id: str, signer: SigningKey | None) -> None:
    """Replace every segment and checkpoint by ones matching the current chain, signed
    (if ``signer``) with the forger's key, and the head's open segment accordingly."""
    conn.execute("DELETE FROM segments")
    conn.execute("DELETE FROM checkpoints")
    (last,) = conn.execute("SELECT max(seq) FROM events").fetchone()
    conn.execute(
        "UPDATE head SET segment_first = ?, segment_bytes = 0 WHERE id = 1", ((last or 0) + 1,)
    )
    if not last:
        return
    h = bytes(conn.execute("SELECT hash FROM events WHERE seq = ?", (last,)).fetchone()[0])
    conn.execute("INSERT INTO segments VALUES (1, 1, ?, 0, 0, 0, ?, 'manual')", (last, h))
    if signer is not None:
        conn.execute(
            "INSERT OR IGNORE INTO signing_keys VALUES (?, x'', ?, 0)",
            (signer.key_id, signer.public_key),
        )
        sig = signer.sign(checkpoint_message(log_id, last, h, 1, 1))
        conn.execute(
            "INSERT INTO checkpoints VALUES (1, ?, ?, 1, ?, ?)", (last, h, signer.key_id, sig)
        )


def sealed_log(path: Path, signer: SigningKey, *, events: int = 40, seal_at: int = 30) -> str:
    with EventLog(path, KEY, signer=signer, synchronous="OFF") as log:
        for i in range(seal_at):
            log.emit("a.b", {"i": i})
        assert log.seal() is not None
        for i in range(seal_at, events):
            log.emit("a.b", {"i": i})
        log.flush()
        return log.store().log_id


# --- (a) a seal past the end is evidence of truncation ----------------------------------


def cut_inside_sealed_segment(path: Path) -> None:
    """The reported attack: delete events 6..40 of a log sealed at 30, rewrite the head."""
    conn = unlocked(path)
    conn.execute("DELETE FROM events WHERE seq >= 6")
    h = conn.execute("SELECT hash FROM events WHERE seq = 5").fetchone()[0]
    conn.execute("UPDATE head SET seq = 5, hash = ? WHERE id = 1", (h,))
    conn.close()


def test_truncation_inside_a_signed_sealed_segment_fails_verify(tmp_path: Path) -> None:
    signer = SigningKey.generate()
    path = tmp_path / "events.db"
    sealed_log(path, signer)
    cut_inside_sealed_segment(path)
    with EventLog(path, KEY) as log:
        for public_key in (signer.public_key, None):  # pinned, and plain fsck --events
            report = log.verify(public_key=public_key)
            assert not report.ok
            assert report.first_bad_seq == 6
            assert any("sealed seq 30, but the log ends at 5" in p.why for p in report.problems)
            assert any("signed seq 30, but the log ends at 5" in p.why for p in report.problems)
            with pytest.raises(EventChainBroken) as err:
                report.raise_for_problems()
            assert err.value.seq == 6


def test_truncation_fails_events_verify_and_fsck_events(
    invoke: Invoke, cli_repo: Path, signing_identity: IdentityInfo
) -> None:
    assert invoke("events", "pin-key").exit_code == 0
    repo = Repo.open(cli_repo, passphrase=PASSPHRASE)
    try:
        assert repo.key is not None
        key = repo.key
        db = repo.steve_dir / "events.db" if repo.steve_dir else None
        assert db is not None
        with EventLog.for_repo(repo) as log:
            for i in range(30):
                log.emit("a.b", {"i": i})
            log.flush()
    finally:
        repo.close()
    assert invoke("events", "seal").exit_code == 0
    for i in range(10):
        invoke("events", "append", "--type", "a.b", "--payload", json.dumps({"i": 30 + i}))
    assert invoke("events", "verify").exit_code == 0
    conn = unlocked(db, key)
    conn.execute("DELETE FROM events WHERE seq >= 6")
    h = conn.execute("SELECT hash FROM events WHERE seq = 5").fetchone()[0]
    conn.execute("UPDATE head SET seq = 5, hash = ? WHERE id = 1", (h,))
    conn.close()
    invoke("events", "verify").assert_error(EXIT_CORRUPT, "STEVE-EVT-002")
    fsck = invoke("fsck", "--events")
    assert fsck.exit_code == EXIT_CORRUPT
    assert "the log ends at 5: events were removed" in fsck.stdout.decode()


# --- (b) the unsigned stretch is reported, a missing seal fails ------------------------


def test_deleting_every_seal_and_checkpoint_fails_where_a_seal_was_due(tmp_path: Path) -> None:
    signer = SigningKey.generate()
    path = tmp_path / "events.db"
    rotation = Rotation(max_events=10)
    with EventLog(path, KEY, signer=signer, rotation=rotation) as log:
        for i in range(35):
            log.emit("a.b", {"i": i})
        log.flush()
        assert [c.seq for c in log.store().checkpoints()] == [10, 20, 30]
        good = log.verify(public_key=signer.public_key)
        assert good.ok and good.signed_seq == 30 and good.unsigned_events == 5
    conn = unlocked(path)
    conn.execute("DELETE FROM checkpoints")
    conn.execute("DELETE FROM segments")
    conn.execute("UPDATE head SET segment_first = 1 WHERE id = 1")
    conn.close()
    with EventLog(path, KEY, rotation=rotation) as log:
        report = log.verify(public_key=signer.public_key)
        assert report.signed_seq == 0 and report.unsigned_events == 35
        assert report.seal_due == 10
        assert [(p.kind, p.seq) for p in report.problems] == [(ProblemKind.UNSIGNED, 10)]
        with pytest.raises(EventLogUnsigned):
            report.raise_for_problems()
        lax = log.verify(public_key=signer.public_key, require_sealed=False)
        assert lax.ok and lax.unsigned_events == 35  # reported, not failed
        assert log.verify().ok  # without a pinned key nothing says a seal was due


def test_an_unsigned_tail_within_the_policy_passes_and_is_reported(tmp_path: Path) -> None:
    """No signing identity (CI): events are chained and seals made unsigned; verify
    reports the stretch and fails only once a seal was due."""
    path = tmp_path / "events.db"
    with EventLog(path, KEY, rotation=Rotation(max_events=10)) as log:
        for i in range(9):
            log.emit("a.b", {"i": i})
        log.flush()
        pinned = SigningKey.generate().public_key
        report = log.verify(public_key=pinned)
        assert report.ok and report.unsigned_events == 9 and report.seal_due is None
        log.append("a.b", {"i": 9})
        assert [s.last_seq for s in log.store().segments()] == [10]  # sealed, unsigned
        assert log.store().checkpoints() == []
        assert not log.verify(public_key=pinned).ok


def test_a_later_signature_covers_earlier_unsigned_seals(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    signer = SigningKey.generate()
    with EventLog(path, KEY, rotation=Rotation(max_events=10)) as log:
        for i in range(25):
            log.emit("a.b", {"i": i})
        log.flush()
        assert not log.verify(public_key=signer.public_key).ok
        log.seal(key=signer)  # the owner signs later: the checkpoint covers seq 1..25
        report = log.verify(public_key=signer.public_key)
        assert report.ok and report.signed_seq == 25 and report.unsigned_events == 0


def test_witnessed_checkpoints_catch_a_cut_of_a_short_log(tmp_path: Path) -> None:
    """A log shorter than one segment, its checkpoints deleted and its tail cut: only a
    checkpoint kept elsewhere (an export-git mirror) can tell."""
    signer = SigningKey.generate()
    path = tmp_path / "events.db"
    sealed_log(path, signer, events=12, seal_at=8)
    with EventLog(path, KEY) as log:
        witnessed = log.store().checkpoints()
        assert log.verify(public_key=signer.public_key, witnessed=witnessed).ok
    conn = unlocked(path)
    conn.execute("DELETE FROM events WHERE seq > 3")
    rechain(conn)
    forge_segments(conn, "", None)
    conn.close()
    with EventLog(path, KEY) as log:
        assert log.verify(public_key=signer.public_key).ok  # indistinguishable alone
        report = log.verify(public_key=signer.public_key, witnessed=witnessed)
        assert not report.ok
        assert "past the end of the log" in report.problems[0].why


# --- (c) the signing key is outside the repository -------------------------------------


def test_events_db_holds_no_private_key(tmp_path: Path) -> None:
    signer = SigningKey.generate()
    path = tmp_path / "events.db"
    sealed_log(path, signer, events=5, seal_at=3)
    conn = raw_connect(path, KEY)
    rows = conn.execute("SELECT private_key, public_key FROM signing_keys").fetchall()
    conn.close()
    assert rows == [(b"", signer.public_key)]


def test_rewriting_and_resigning_with_the_repository_key_is_detected(tmp_path: Path) -> None:
    """The attacker has the repository key: edits an event, recomputes the chain and the
    seals, and signs with a key of their own (the only kind they can get)."""
    signer = SigningKey.generate()
    path = tmp_path / "events.db"
    rotation = Rotation(max_events=10)
    with EventLog(path, KEY, signer=signer, rotation=rotation) as log:
        for i in range(25):
            log.emit("a.b", {"i": i})
        log.flush()
        log_id = log.store().log_id
        witnessed = log.store().checkpoints()
    conn = unlocked(path)
    conn.execute("UPDATE events SET payload = x'a0' WHERE seq = 4")
    rechain(conn)
    forge_segments(conn, log_id, SigningKey.generate())
    conn.close()
    with EventLog(path, KEY, rotation=rotation) as log:
        assert log.verify().ok  # consistent, self-signed: only the pinned key tells
        report = log.verify(public_key=signer.public_key)
        assert not report.ok and report.signed_seq == 0
        assert [p.kind for p in report.problems] == [ProblemKind.UNSIGNED]
        assert not log.verify(public_key=signer.public_key, witnessed=witnessed).ok


def test_an_old_log_with_an_embedded_key_stays_readable_and_migrates(tmp_path: Path) -> None:
    """Logs made before issue 12 kept the private key in signing_keys: their checkpoints
    still verify against the recorded key, but only the pinned key covers the chain; the
    embedded key is never used again, and its holder's re-signing proves nothing."""
    path = tmp_path / "events.db"
    old = SigningKey.generate()
    with EventLog(path, KEY) as log:
        for i in range(6):
            log.emit("a.b", {"i": i})
        log.flush()
        log_id = log.store().log_id
        head = log.head()
    conn = raw_connect(path, KEY)  # what the old code wrote
    raw_private = old._private.private_bytes_raw()
    conn.execute(
        "INSERT INTO signing_keys VALUES (?, ?, ?, 0)", (old.key_id, raw_private, old.public_key)
    )
    sig = old.sign(checkpoint_message(log_id, head.seq, head.hash, 7))
    conn.execute(
        "INSERT INTO checkpoints VALUES (1, ?, ?, 7, ?, ?)", (head.seq, head.hash, old.key_id, sig)
    )
    conn.close()
    identity = SigningKey.generate()
    with EventLog(path, KEY, rotation=Rotation(max_events=8)) as log:
        assert log.verify().ok  # the old signature verifies against its recorded key
        pinned = log.verify(public_key=identity.public_key)
        assert pinned.ok and pinned.signed_seq == 0 and pinned.unsigned_events == 6
        log.emit("a.b", {})
        log.emit("a.b", {})
        log.flush()  # the rotation seals at 8: the embedded key must not sign it
        assert [c.key_id for c in log.store().checkpoints()] == [old.key_id]
        assert log.seal(key=identity) is None  # nothing open: `steve events seal` then
        log.checkpoint(key=identity)  # signs the head (migration: sign, pin the key)
        report = log.verify(public_key=identity.public_key)
        assert report.ok and report.signed_seq == 8


def test_identity_file_is_private_encrypted_and_typed(identity_dir: Path) -> None:
    info = create_identity(identity_dir, b"secret", kdf=make_fast_kdf())
    assert stat.S_IMODE(identity_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o600
    key = load_signing_key(identity_dir, b"secret")
    assert key.public_key == info.public_key == read_identity(identity_dir).public_key
    raw = key._private.private_bytes_raw()
    assert raw not in info.path.read_bytes() and raw.hex().encode() not in info.path.read_bytes()
    with pytest.raises(WrongSigningPassphrase):
        load_signing_key(identity_dir, b"wrong")
    info.path.chmod(0o644)
    with pytest.raises(IdentityInsecure):
        load_signing_key(identity_dir, b"secret")
    with pytest.raises(NoSigningIdentity):
        read_identity(identity_dir / "elsewhere")


def test_checkpoint_without_a_key_is_a_typed_error(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "e.db", KEY)
    try:
        with pytest.raises(NoSigningIdentity):
            store.checkpoint()
    finally:
        store.close()


def test_cli_identity_pin_and_verify_with_the_pinned_key(
    invoke: Invoke, cli_repo: Path, identity_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("identity", "show").assert_error(EXIT_KEY, "STEVE-SIGN-001")
    invoke("events", "seal").assert_error(EXIT_KEY, "STEVE-SIGN-001")
    invoke("events", "verify", "--require-sealed").assert_error(EXIT_USAGE, "STEVE-EVT-021")
    invoke("identity", "init").assert_error(EXIT_KEY, "STEVE-SIGN-006")
    monkeypatch.setenv("STEVE_SIGNING_PASSPHRASE", "sign-pw")
    made = invoke("identity", "init", "--json")
    assert made.exit_code == 0, made.stderr
    public = json.loads(made.lines[0])["public_key"]
    assert invoke("identity", "show").lines == [public]
    invoke("identity", "init").assert_error(7, "STEVE-SIGN-003")
    assert invoke("events", "pin-key").lines == [public]
    config = (cli_repo / ".steve" / "config").read_text()
    assert f'public_key = "{public}"' in config
    assert "signing" not in os.listdir(cli_repo / ".steve")
    invoke("events", "append", "--type", "a.b")
    out = invoke("events", "verify", "--json")
    summary = json.loads(out.lines[-1])
    assert out.exit_code == 0 and summary["pinned_key"] == public
    assert summary["signed_seq"] == 0 and summary["unsigned_events"] == 1
    sealed = json.loads(invoke("events", "seal", "--json").lines[0])
    assert sealed["public_key"] == public
    summary = json.loads(invoke("events", "verify", "--json").lines[-1])
    assert summary["signed_seq"] == 1 and summary["unsigned_events"] == 0 and summary["ok"]
    monkeypatch.setenv("STEVE_SIGNING_PASSPHRASE", "wrong")
    invoke("events", "seal").assert_error(EXIT_KEY, "STEVE-SIGN-002")
    other = SigningKey.generate().public_key.hex()
    assert invoke("events", "verify", "--public-key", other).exit_code == 0  # nothing due
    invoke("events", "verify", "--public-key", "zz").assert_error(6, "STEVE-INPUT-001")


def test_init_pins_the_identity_key(
    tmp_path: Path, signing_identity: IdentityInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from steve.cli.main import cli

    monkeypatch.setenv("STEVE_PASSPHRASE", PASSPHRASE)
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    config = Repo.read_config(tmp_path / "r")
    assert config.events_public_key == signing_identity.public_key


def test_the_identity_keeps_its_newest_checkpoint_and_verify_requires_it(
    invoke: Invoke, cli_repo: Path, signing_identity: IdentityInfo, identity_dir: Path
) -> None:
    """A short log rolled back below its last signature, its checkpoints and seals
    deleted: nothing in the repository says a seal was due, but the signer's own record
    (outside the repository) does."""
    assert invoke("events", "pin-key").exit_code == 0
    for i in range(4):
        invoke("events", "append", "--type", "a.b", "--payload", json.dumps({"i": i}))
    assert invoke("events", "seal").exit_code == 0
    records = list((identity_dir / "checkpoints").iterdir())
    # one record per log id, and the same under the repository's id and its KDF salt
    assert len(records) == 3
    assert all(stat.S_IMODE(r.stat().st_mode) == 0o600 for r in records)
    invoke("events", "append", "--type", "a.b")
    assert invoke("events", "verify").exit_code == 0
    repo = Repo.open(cli_repo, passphrase=PASSPHRASE)
    key = repo.key
    repo.close()
    assert key is not None
    conn = unlocked(cli_repo / ".steve" / "events.db", key)
    conn.execute("DELETE FROM events WHERE seq > 2")
    rechain(conn)
    forge_segments(conn, "", None)
    conn.execute("DELETE FROM segments")
    conn.execute("UPDATE head SET segment_first = 1 WHERE id = 1")
    conn.close()
    rolled = invoke("events", "verify")
    rolled.assert_error(EXIT_CORRUPT, "STEVE-EVT-003")
    assert "witnessed checkpoint of seq 4: signed seq 4, past the end" in rolled.stdout.decode()
    for record in records:  # without the records, the rollback looks like a short log
        record.unlink()
    summary = json.loads(invoke("events", "verify", "--json").lines[-1])
    assert summary["ok"] and summary["unsigned_events"] == 2


def test_a_damaged_identity_file_is_a_typed_error(identity_dir: Path) -> None:
    info = create_identity(identity_dir, b"secret", kdf=make_fast_kdf())
    record = json.loads(info.path.read_text())
    for field, value in (
        (
            "kdf",
            {
                "algorithm": "argon2id",
                "salt": "00",
                "memory_kib": 1,
                "iterations": 1,
                "parallelism": 1,
            },
        ),
        ("nonce", "zz"),
        ("format", "other"),
    ):
        info.path.write_text(json.dumps({**record, field: value}))
        with pytest.raises(IdentityDamaged):
            load_signing_key(identity_dir, b"secret")
    info.path.write_bytes(b"\xff not json")
    with pytest.raises(IdentityDamaged):
        read_identity(identity_dir)


def test_cli_signer_gives_no_key_without_identity_or_passphrase(
    identity_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seals due during an ordinary command never prompt: no identity or no
    STEVE_SIGNING_PASSPHRASE means an unsigned seal, and the reason is kept."""
    from steve.cli.identity import CliSigner

    signer = CliSigner()
    assert signer() is None and isinstance(signer.error, NoSigningIdentity)
    info = create_identity(identity_dir, b"pw", kdf=make_fast_kdf())
    signer = CliSigner()
    assert signer() is None and signer.error is not None
    assert signer.error.code == "STEVE-SIGN-006"
    monkeypatch.setenv("STEVE_SIGNING_PASSPHRASE", "pw")
    signer = CliSigner()
    key = signer()
    assert key is not None and key.public_key == info.public_key == signer.public_key


def test_installed_entry_point_identity_init_pin_seal_verify(tmp_path: Path) -> None:
    import shutil
    import subprocess

    exe = shutil.which("steve")
    assert exe is not None, "the steve console script is not installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEVE_", "XDG_"))}
    env.update(
        HOME=str(tmp_path / "home"),
        STEVE_PASSPHRASE="pw",
        STEVE_SIGNING_PASSPHRASE="sign",
        STEVE_DIR=str(tmp_path / "repo"),
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, *args], env=env, capture_output=True, text=True, check=False, timeout=120
        )

    made = run("identity", "init")
    assert made.returncode == 0, made.stderr
    public = made.stdout.strip()
    key_file = tmp_path / "home" / ".config" / "steve" / "signing-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert run("init", str(tmp_path / "repo")).returncode == 0
    assert f'public_key = "{public}"' in (tmp_path / "repo" / ".steve" / "config").read_text()
    assert run("events", "append", "--type", "a.b").returncode == 0
    assert run("events", "seal").returncode == 0
    verified = run("events", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    summary = json.loads(verified.stdout.splitlines()[-1])
    assert summary["pinned_key"] == public and summary["signed_seq"] == 1
