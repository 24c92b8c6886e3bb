"""Freeze and run share ONE policy (issue 12 item 17), and no grant mounts the engine's
socket (issue 12 item 19)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import EngineSocketMount, ManifestInvalid
from steve.exec import (
    ContainerPolicy,
    DockerRunner,
    Engine,
    FailureClass,
    HostMountSpec,
    check,
    policy_for,
)
from steve.exec.policy import require_allowed
from steve.objects.schemas import validate
from steve.objects.schemas.container import engine_socket_problem
from steve.objects.schemas.plan import PlanManifest
from steve.repo import Repo
from tests.docker_fixtures import labelled
from tests.exec.conftest import MakeSpec

DIGEST = "sha256:" + "cd" * 32
SOCKET = "/var/run/docker.sock"


def plan(node: dict[str, Any], grants: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    base = {"id": "n", "kind": "run", "command": ["true"], "image": DIGEST}
    return {
        "title": "t",
        "nodes": [{**base, **node}],
        "grants": [{"node": "n", "capability": c, "reason": "needed"} for c in grants],
    }


def problems(draft: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ManifestInvalid) as info:
        validate("plan", draft)
    return list(info.value.problems)


@pytest.mark.parametrize("user", ["1000:0", "0:1000", "0:0"])
def test_a_root_user_or_group_needs_a_grant_at_freeze_as_at_run(user: str) -> None:
    found = problems(plan({"requests": {"user": user}}))
    if user == "0:0":
        assert found  # refused before too
    assert [p for p, r in found if r.startswith("grant_required")] == ["nodes[0].requests.user"]
    granted = validate("plan", plan({"requests": {"user": user}}, ["root_user"]))
    assert isinstance(granted, PlanManifest)
    policy, _ = policy_for(granted, granted.nodes[0])
    assert check(policy) == []


@pytest.mark.parametrize("user", ["2147483648:1000", "1000:4294967296", "9999999999:0"])
def test_an_id_the_engine_refuses_is_refused_at_freeze_as_at_run(user: str) -> None:
    """The engine takes uids and gids 0..2**31-1 only: a plan asking for more froze,
    then every run failed at container creation."""
    found = problems(plan({"requests": {"user": user}}, ["root_user"]))
    assert [p for p, _ in found] == ["nodes[0].requests.user"], found
    with pytest.raises(ValueError, match="2147483647"):
        ContainerPolicy(user=user, granted=("root_user",))
    largest = plan({"requests": {"user": "2147483647:1000"}})
    assert isinstance(validate("plan", largest), PlanManifest)


@pytest.mark.parametrize(
    ("node", "where", "policy"),
    [
        (
            {"budgets": {"memory_bytes": 1000}},
            "nodes[0].budgets.memory_bytes",
            {"memory_bytes": 1000},
        ),
        ({"budgets": {"memory_bytes": (6 << 20) - 1}}, "nodes[0].budgets.memory_bytes", None),
        ({"requests": {"cpu_millis": 1}}, "nodes[0].requests.cpu_millis", {"nano_cpus": 10**6}),
        ({"requests": {"cpu_millis": 9}}, "nodes[0].requests.cpu_millis", None),
    ],
)
def test_limits_the_engine_refuses_are_refused_at_freeze_as_at_run(
    node: dict[str, Any], where: str, policy: dict[str, int] | None
) -> None:
    """Docker refuses a memory limit under 6 MiB and runc a CPU quota under 1/100 CPU
    at creation: such plans froze, then every run failed to start."""
    found = problems(plan(node, ["cpu", "memory"]))
    assert [p for p, _ in found] == [where], found
    if policy is not None:
        with pytest.raises(ValueError, match="the engine refuses"):
            ContainerPolicy(**policy)
    for fine in ({"budgets": {"memory_bytes": 6 << 20}}, {"requests": {"cpu_millis": 10}}):
        assert isinstance(validate("plan", plan(fine)), PlanManifest)


def test_an_unknown_capability_is_refused_at_freeze_as_at_run() -> None:
    """The engine refuses cap_add names it does not know at creation."""
    found = problems(plan({"requests": {"cap_add": ["NET_ADMIN", "NOT_A_CAP"]}}, ["cap_add"]))
    assert [p for p, _ in found] == ["nodes[0].requests.cap_add[1]"], found
    with pytest.raises(ValueError, match="unknown capability"):
        ContainerPolicy(cap_add=("NOT_A_CAP",), granted=("cap_add",))
    for known in (["NET_ADMIN"], ["net_admin"], ["CAP_SYS_PTRACE"], ["ALL"]):
        granted = validate("plan", plan({"requests": {"cap_add": known}}, ["cap_add"]))
        assert isinstance(granted, PlanManifest)


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("outputs", ["/etc"], "nodes[0].outputs[0]"),
        ("outputs", ["../up"], "nodes[0].outputs[0]"),
        ("outputs", ["a/./b"], "nodes[0].outputs[0]"),
        ("inputs", [{"name": "/src", "pinned": "ab" * 32}], "nodes[0].inputs[0].name"),
    ],
)
def test_paths_the_runner_refuses_are_refused_at_freeze(
    field: str, value: list[Any], where: str
) -> None:
    found = problems(plan({field: value}))
    assert (where, next(r for p, r in found if p == where)) in found
    assert any(p == where and r.startswith("relative_path:") for p, r in found)


users = st.tuples(st.sampled_from([0, 1, 1000, 65534]), st.sampled_from([0, 1, 1000, 65534]))


@given(
    users,
    st.booleans(),
    st.booleans(),
    st.lists(st.sampled_from(["root_user", "network", "host_network", "writable_root"])),
)
def test_a_plan_that_freezes_is_a_plan_that_may_run(
    user: tuple[int, int], network: bool, writable: bool, grants: list[str]
) -> None:
    node = {
        "network": network,
        "requests": {"user": f"{user[0]}:{user[1]}", "writable_root": writable},
    }
    try:
        frozen = validate("plan", plan(node, sorted(set(grants))))
    except ManifestInvalid:
        return
    assert isinstance(frozen, PlanManifest)
    policy, _ = policy_for(frozen, frozen.nodes[0])
    assert check(policy) == []


@pytest.mark.parametrize(
    "source",
    [
        SOCKET,
        "/run/docker.sock",
        "/run/containerd/containerd.sock",
        "/var/run",
        "/run",
        "/var",
        "/",
        "/run/user/1000/docker.sock",
        "/home/me/.docker/run/docker.sock",
        "//var/run/./docker.sock",
    ],
)
def test_the_engine_socket_is_refused_at_freeze_even_granted_and_read_only(source: str) -> None:
    mount = {"source": source, "target": "/s", "read_only": True}
    node = {"requests": {"host_mounts": [mount], "user": "0:0"}}
    found = problems(plan(node, ["host_mount", "root_user"]))
    assert [p for p, r in found if r.startswith("engine_socket:")] == [
        "nodes[0].requests.host_mounts"
    ]


def test_ordinary_host_mounts_are_not_taken_for_the_socket(tmp_path: Path) -> None:
    assert engine_socket_problem(str(tmp_path)) is None
    assert engine_socket_problem("/srv/data") is None
    policy = ContainerPolicy(
        host_mounts=(HostMountSpec(source=str(tmp_path), target="/d"),), granted=("host_mount",)
    )
    assert check(policy) == []


@pytest.fixture
def socket_link(tmp_path: Path) -> Path:
    if not Path(SOCKET).exists():
        pytest.fail(f"{SOCKET} is missing: these tests need the local Docker Engine")
    link = tmp_path / "innocent"
    os.symlink(SOCKET, link)
    return link


def test_a_path_that_resolves_to_the_socket_is_refused_by_the_runner_check(
    socket_link: Path,
) -> None:
    policy = ContainerPolicy(
        host_mounts=(HostMountSpec(source=str(socket_link), target="/s"),),
        user="0:0",
        granted=("host_mount", "root_user"),
    )
    refused = check(policy)
    assert refused and refused[0][0] is None and "resolves to" in refused[0][1]
    with pytest.raises(EngineSocketMount):
        require_allowed(policy)
    holder = ContainerPolicy(
        host_mounts=(
            HostMountSpec(source=str(Path(os.path.realpath(SOCKET)).parent), target="/s"),
        ),
        granted=("host_mount",),
    )
    assert check(holder) and check(holder)[0][0] is None


def test_the_runner_never_creates_a_container_with_the_socket(
    engine: Engine, repo: Repo, make_spec: MakeSpec, socket_link: Path
) -> None:
    mount = HostMountSpec(source=str(socket_link), target="/s", read_only=True)
    spec = make_spec(
        "ls -l /s", host_mounts=(mount,), user="0:0", granted=("host_mount", "root_user")
    )
    result = DockerRunner(engine).run(repo, spec)
    assert result.failure is FailureClass.POLICY_DENIED
    assert "docker.sock" in result.failure_detail
    assert result.container_id == ""
    assert labelled(engine, f"steve.run={spec.run_id}") == ([], [])


@pytest.fixture
def socket_hard_link(tmp_path: Path) -> Path:
    """A directory whose subdirectory holds a hard link to the engine's socket (same
    inode: mounting the directory hands the engine to the step)."""
    if not Path(SOCKET).exists():
        pytest.fail(f"{SOCKET} is missing: these tests need the local Docker Engine")
    holder = tmp_path / "project"
    (holder / "deep" / "er").mkdir(parents=True)
    (holder / "deep" / "file.txt").write_text("x")
    try:
        os.link(os.path.realpath(SOCKET), holder / "deep" / "er" / "innocent")
    except OSError as exc:  # another file system than the socket's: nothing to link
        pytest.fail(f"cannot hard-link {SOCKET} under {tmp_path}: {exc}")
    return holder


def test_a_directory_holding_a_hard_link_to_the_socket_is_refused(
    socket_hard_link: Path,
) -> None:
    policy = ContainerPolicy(
        host_mounts=(HostMountSpec(source=str(socket_hard_link), target="/d"),),
        granted=("host_mount",),
    )
    refused = check(policy)
    assert refused and refused[0][0] is None, refused
    assert "deep/er/innocent" in refused[0][1]
    with pytest.raises(EngineSocketMount):
        require_allowed(policy)


def test_the_runner_never_mounts_a_hard_link_to_the_socket(
    engine: Engine, repo: Repo, make_spec: MakeSpec, socket_hard_link: Path
) -> None:
    mount = HostMountSpec(source=str(socket_hard_link), target="/d", read_only=True)
    spec = make_spec(
        "ls -l /d/deep/er", host_mounts=(mount,), user="0:0", granted=("host_mount", "root_user")
    )
    result = DockerRunner(engine).run(repo, spec)
    assert result.failure is FailureClass.POLICY_DENIED
    assert result.container_id == ""
    assert labelled(engine, f"steve.run={spec.run_id}") == ([], [])


@pytest.mark.parametrize("source", ["/proc", "/proc/self", "/proc/1/root/run", "/proc/1/cwd"])
def test_procfs_is_refused_its_magic_links_reach_the_hosts_root(source: str) -> None:
    """/proc/<pid>/root of a host process is the host's root, engine socket included,
    from inside the container too: refused at freeze and by the runner, never a
    traceback (resolving /proc/1/root raised PermissionError)."""
    assert engine_socket_problem(source) is not None
    policy = ContainerPolicy(
        host_mounts=(HostMountSpec(source=source, target="/d"),), granted=("host_mount",)
    )
    refused = check(policy)
    assert refused and refused[0][0] is None, refused
    with pytest.raises(EngineSocketMount):
        require_allowed(policy)


def test_a_link_to_procfs_is_refused_by_the_runner_check(tmp_path: Path) -> None:
    link = tmp_path / "innocent"
    os.symlink(f"/proc/{os.getpid()}", link)
    policy = ContainerPolicy(
        host_mounts=(HostMountSpec(source=str(link), target="/d"),), granted=("host_mount",)
    )
    refused = check(policy)
    assert refused and refused[0][0] is None and "resolves to" in refused[0][1]
