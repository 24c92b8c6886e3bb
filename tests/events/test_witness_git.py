"""Checkpoints exported to a git mirror (refs/steve/checkpoints) with the pinned public
key: deterministic, checked by `steve verify-git` without STEVE's key, and usable by
`steve events verify --witness` to catch a cut the database alone cannot show."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from steve.errors import EXIT_CORRUPT
from steve.events.signing import IdentityInfo
from steve.gitbridge import verify_git
from steve.gitbridge.witness import read_checkpoints_from
from steve.repo import Repo
from tests.cli.conftest import PASSPHRASE, Invoke
from tests.events.test_signing import rechain, unlocked


def git(cwd: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_export_git_carries_signed_checkpoints_and_verify_git_checks_them(
    invoke: Invoke,
    cli_repo: Path,
    signing_identity: IdentityInfo,
    identity_dir: Path,
    tmp_path: Path,
) -> None:
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "init", "-q", "--bare", str(mirror))
    assert invoke("events", "pin-key").exit_code == 0
    for i in range(5):
        invoke("events", "append", "--type", "a.b", "--payload", json.dumps({"i": i}))
    assert invoke("events", "seal").exit_code == 0
    for i in range(3):
        invoke("events", "append", "--type", "a.b", "--payload", json.dumps({"i": i}))
    assert invoke("events", "seal").exit_code == 0
    first = export_only(invoke, mirror)
    assert len(first) == 1
    commit = first[0].split()[0]
    assert git(mirror, "rev-parse", "refs/steve/checkpoints").strip() == commit
    git(mirror, "fsck", "--strict")
    public = invoke("identity", "show").lines[0]
    assert git(mirror, "show", "refs/steve/checkpoints:public-key").strip() == public
    found = read_checkpoints_from(mirror)
    assert found is not None and found[2] == [] and len(found[1]) == 2
    report = verify_git(mirror)
    assert report.ok and report.checkpoints == 2
    # exporting again writes nothing new; the same content gives the same commit
    assert export_only(invoke, mirror) == []

    # the mirror now witnesses seq 5 and 8: cut the log to 6 and re-chain it
    repo = Repo.open(cli_repo, passphrase=PASSPHRASE)
    key, db = repo.key, cli_repo / ".steve" / "events.db"
    repo.close()
    assert key is not None
    conn = unlocked(db, key)
    conn.execute("DELETE FROM events WHERE seq > 6")
    rechain(conn)
    conn.execute("DELETE FROM checkpoints WHERE seq > 6")
    conn.execute("DELETE FROM segments WHERE last_seq > 6")
    conn.execute("UPDATE head SET segment_first = 6 WHERE id = 1")
    conn.close()
    invoke("events", "verify").assert_error(EXIT_CORRUPT, "STEVE-EVT-003")  # the signer's record
    for record in (identity_dir / "checkpoints").iterdir():
        record.unlink()  # e.g. verifying on another machine than the signer's
    assert invoke("events", "verify").exit_code == 0  # alone, the database cannot tell
    cut = invoke("events", "verify", "--witness", str(mirror))
    cut.assert_error(EXIT_CORRUPT, "STEVE-EVT-003")
    assert "witnessed checkpoint of seq 8" in cut.stdout.decode()


def export_only(invoke: Invoke, mirror: Path) -> list[str]:
    """Run export-git and return its refs/steve/checkpoints line(s)."""
    out = invoke("export-git", "--all", str(mirror))
    assert out.exit_code == 0, out.stderr
    return [line for line in out.lines if line.endswith("refs/steve/checkpoints updated")]


def test_verify_git_catches_a_forged_checkpoint_signature(
    invoke: Invoke, signing_identity: IdentityInfo, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "init", "-q", "--bare", str(mirror))
    assert invoke("events", "pin-key").exit_code == 0
    invoke("events", "append", "--type", "a.b")
    assert invoke("events", "seal").exit_code == 0
    assert len(export_only(invoke, mirror)) == 1
    (name,) = [
        n
        for n in git(mirror, "ls-tree", "--name-only", "refs/steve/checkpoints:checkpoints").split()
        if n.endswith(".sig")
    ]
    # a forger without the signing key replaces the signature and commits the result
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(mirror), str(work))
    git(work, "fetch", "-q", "origin", "refs/steve/checkpoints:refs/steve/checkpoints")
    git(work, "checkout", "-q", "refs/steve/checkpoints")
    (work / "checkpoints" / name).write_bytes(bytes(64))
    git(work, "-c", "user.name=m", "-c", "user.email=m@x", "commit", "-qam", "forged")
    git(work, "push", "-q", "--force", "origin", "HEAD:refs/steve/checkpoints")
    report = verify_git(mirror)
    assert not report.ok
    assert any("does not verify with the public key" in p.what for p in report.problems)
    invoke("verify-git", str(mirror)).assert_error(EXIT_CORRUPT, "STEVE-GIT-004")
