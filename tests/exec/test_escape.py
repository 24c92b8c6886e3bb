"""Escape attempts against the default policy, each contained or refused (real engine)."""

from __future__ import annotations

from typing import Any

import pytest

from steve.errors import ManifestInvalid
from steve.exec import DockerRunner, Engine, FailureClass, HostMountSpec
from steve.objects.schemas import validate
from steve.repo import Repo
from tests.docker_fixtures import labelled
from tests.exec.conftest import MakeSpec


def stderr(repo: Repo, result: Any) -> bytes:
    return repo.read_blob(result.stderr)


def test_no_network_without_a_grant(engine: Engine, repo: Repo, make_spec: MakeSpec) -> None:
    runner = DockerRunner(engine)
    # only the loopback interface exists
    ifaces = runner.run(repo, make_spec("cat /proc/net/dev"))
    assert ifaces.failure is None
    names = {line.split(b":")[0].strip() for line in repo.read_blob(ifaces.stdout).splitlines()[2:]}
    assert names == {b"lo"}
    # connecting out fails and is classified
    result = runner.run(repo, make_spec("nc -w 2 1.1.1.1 80 </dev/null"))
    assert result.failure is FailureClass.NETWORK_DENIED, result.failure_detail
    assert b"Network is unreachable" in stderr(repo, result)
    named = runner.run(repo, make_spec("nc -w 2 example.com 80 </dev/null"))
    assert named.failure is FailureClass.NETWORK_DENIED


def test_granted_network_gets_an_interface(engine: Engine, repo: Repo, make_spec: MakeSpec) -> None:
    result = DockerRunner(engine).run(
        repo, make_spec("cat /proc/net/dev", network_mode="bridge", granted=("network",))
    )
    assert result.failure is None
    assert b"eth0" in repo.read_blob(result.stdout)


def test_writing_outside_the_workdir_fails(engine: Engine, repo: Repo, make_spec: MakeSpec) -> None:
    runner = DockerRunner(engine)
    for target in ("/etc/x", "/x", "/bin/x"):
        result = runner.run(repo, make_spec(f"echo x > {target}"))
        assert result.failure is FailureClass.EXITED_NONZERO
        assert b"Read-only file system" in stderr(repo, result)
    # /tmp is a small tmpfs, the work dir a volume: both writable
    ok = runner.run(repo, make_spec("echo x > /tmp/x && echo y > here && cat /tmp/x here"))
    assert ok.failure is None
    assert repo.read_blob(ok.stdout) == b"x\ny\n"


def test_no_capabilities_and_not_root(engine: Engine, repo: Repo, make_spec: MakeSpec) -> None:
    result = DockerRunner(engine).run(repo, make_spec("grep CapEff /proc/self/status; id -u"))
    assert result.failure is None
    assert repo.read_blob(result.stdout) == b"CapEff:\t0000000000000000\n65534\n"


def test_fork_bomb_hits_the_pid_limit(engine: Engine, repo: Repo, make_spec: MakeSpec) -> None:
    result = DockerRunner(engine).run(
        repo, make_spec("f(){ f|f; }; f", pids_limit=32, timeout_s=20.0)
    )
    assert result.failure is FailureClass.RESOURCE_LIMIT, result.failure_detail
    assert "pids limit of 32" in result.failure_detail
    assert b"can't fork" in stderr(repo, result)


def test_memory_hog_is_oom_killed(engine: Engine, repo: Repo, make_spec: MakeSpec) -> None:
    spec = make_spec(
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}", memory_bytes=32 << 20
    )
    result = DockerRunner(engine).run(repo, spec)
    if not engine.info().memory_limit:  # reported, not ignored
        assert any("memory limit" in n for n in result.notes)
        return
    assert result.failure is FailureClass.RESOURCE_LIMIT, result.failure_detail
    assert "out of memory" in result.failure_detail
    assert result.exit_code == 137


@pytest.mark.parametrize(
    ("policy", "capability"),
    [
        ({"privileged": True}, "privileged"),
        ({"host_mounts": (HostMountSpec(source="/etc", target="/host"),)}, "host_mount"),
        ({"network_mode": "host"}, "host_network"),
        ({"network_mode": "bridge"}, "network"),
        ({"read_only_root": False}, "writable_root"),
        ({"user": "0:0"}, "root_user"),
        ({"cap_add": ("NET_ADMIN",)}, "cap_add"),
        ({"memory_bytes": 0}, "memory"),
        ({"pids_limit": 100000}, "pids"),
        ({"host_pid": True}, "host_pid"),
        ({"security_opt": ("seccomp=unconfined",)}, "privileged"),
    ],
)
def test_policy_beyond_defaults_is_refused_before_create(
    engine: Engine, repo: Repo, make_spec: MakeSpec, policy: dict[str, Any], capability: str
) -> None:
    spec = make_spec("echo escaped", **policy)
    result = DockerRunner(engine).run(repo, spec)
    assert result.failure is FailureClass.POLICY_DENIED
    assert f"{capability!r} grant" in result.failure_detail
    assert result.container_id == ""
    assert labelled(engine, f"steve.run={spec.run_id}") == ([], [])


def test_unpinned_image_is_refused_before_create(
    engine: Engine, repo: Repo, make_spec: MakeSpec
) -> None:
    spec = make_spec("echo hi", image="steve-test-busybox:latest")
    result = DockerRunner(engine).run(repo, spec)
    assert result.failure is FailureClass.POLICY_DENIED
    assert "not pinned" in result.failure_detail
    assert labelled(engine, f"steve.run={spec.run_id}") == ([], [])


DIGEST = "sha256:" + "ab" * 32


def plan_with(**node: Any) -> dict[str, Any]:
    return {
        "title": "escape",
        "nodes": [{"id": "n", "kind": "run", "command": ["true"], "image": DIGEST, **node}],
    }


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ({"requests": {"privileged": True}}, "nodes[0].requests.privileged"),
        (
            {"requests": {"host_mounts": [{"source": "/", "target": "/host"}]}},
            "nodes[0].requests.host_mounts",
        ),
        ({"requests": {"host_network": True}}, "nodes[0].requests.host_network"),
        ({"network": True}, "nodes[0].network"),
    ],
)
def test_plan_asking_for_more_is_refused_at_freeze(node: dict[str, Any], path: str) -> None:
    with pytest.raises(ManifestInvalid) as info:
        validate("plan", plan_with(**node))
    assert [p for p, rule in info.value.problems if rule.startswith("grant_required")] == [path]


def test_plan_with_unpinned_image_is_refused_at_freeze() -> None:
    draft = plan_with()
    draft["nodes"][0]["image"] = "busybox:latest"
    with pytest.raises(ManifestInvalid) as info:
        validate("plan", draft)
    assert [p for p, _ in info.value.problems] == ["nodes[0].image"]
