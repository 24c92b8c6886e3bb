"""Container policy: defaults, the grant check, docker arguments, plan grants (no engine)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steve.errors import ManifestInvalid, PolicyViolation
from steve.exec import ContainerPolicy, check, create_kwargs, policy_for, require_allowed
from steve.objects.schemas import validate
from steve.objects.schemas.plan import CAPABILITIES, DEFAULT_MEMORY_BYTES, PlanManifest

DIGEST = "sha256:" + "cd" * 32


def test_defaults_are_locked_down() -> None:
    p = ContainerPolicy()
    assert check(p) == []
    kw = create_kwargs(p)
    assert kw["network_mode"] == "none"
    assert kw["cap_drop"] == ["ALL"]
    assert kw["security_opt"] == ["no-new-privileges"]
    assert not any("seccomp" in o for o in kw["security_opt"])  # the default profile applies
    assert kw["read_only"] is True
    assert kw["privileged"] is False
    assert kw["user"] == "65534:65534"
    assert kw["pids_limit"] == 256
    assert kw["mem_limit"] == kw["memswap_limit"] == DEFAULT_MEMORY_BYTES
    assert kw["nano_cpus"] == 1_000_000_000
    assert list(kw["tmpfs"]) == ["/tmp"]
    assert "mounts" not in kw and "pid_mode" not in kw and "userns_mode" not in kw
    assert kw["ipc_mode"] == "private"


def test_canonical_is_plain_and_stable() -> None:
    a = ContainerPolicy(cap_add=("SYS_PTRACE", "NET_ADMIN"), granted=("cap_add",))
    b = ContainerPolicy(cap_add=("NET_ADMIN", "SYS_PTRACE"), granted=("cap_add",))
    assert a.canonical() == b.canonical()
    assert a.canonical()["cap_add"] == ["NET_ADMIN", "SYS_PTRACE"]
    assert ContainerPolicy().canonical()["seccomp"] == "default"


def test_tighter_limits_need_no_grant() -> None:
    p = ContainerPolicy(memory_bytes=32 << 20, pids_limit=16, nano_cpus=500_000_000)
    assert check(p) == []


def test_require_allowed_raises_policy_violation() -> None:
    with pytest.raises(PolicyViolation) as info:
        require_allowed(ContainerPolicy(privileged=True))
    assert info.value.exit_code == 12
    assert info.value.code == "STEVE-POLICY-001"
    require_allowed(ContainerPolicy(privileged=True, granted=("privileged",)))


def test_strict_types() -> None:
    with pytest.raises(ValueError, match="user"):
        ContainerPolicy(user="nobody")
    with pytest.raises(ValueError, match="network_mode"):
        ContainerPolicy(network_mode="container:x")  # type: ignore[arg-type]


# --- plans and grants ----------------------------------------------------------------

REQUESTS: dict[str, tuple[str, Any, str]] = {
    # capability -> (node field path, value, problem path suffix)
    "network": ("network", True, "network"),
    "host_network": ("requests.host_network", True, "requests.host_network"),
    "privileged": ("requests.privileged", True, "requests.privileged"),
    "host_mount": (
        "requests.host_mounts",
        [{"source": "/srv", "target": "/srv", "read_only": True}],
        "requests.host_mounts",
    ),
    "writable_root": ("requests.writable_root", True, "requests.writable_root"),
    "memory": ("budgets.memory_bytes", 4 << 30, "budgets.memory_bytes"),
    "pids": ("requests.pids", 4096, "requests.pids"),
    "cpu": ("requests.cpu_millis", 2000, "requests.cpu_millis"),
    "cap_add": ("requests.cap_add", ["NET_ADMIN"], "requests.cap_add"),
    "root_user": ("requests.user", "0:0", "requests.user"),
    "host_pid": ("requests.host_pid", True, "requests.host_pid"),
    "host_ipc": ("requests.host_ipc", True, "requests.host_ipc"),
    "secrets": ("secrets", ["DEPLOY_TOKEN"], "secrets"),
}


def test_every_capability_has_a_request() -> None:
    assert sorted(REQUESTS) == sorted(CAPABILITIES)


def node_with(caps: list[str]) -> dict[str, Any]:
    node: dict[str, Any] = {"id": "n1", "kind": "run", "command": ["make"], "image": DIGEST}
    for cap in caps:
        path, value, _ = REQUESTS[cap]
        where = node
        *parents, last = path.split(".")
        for part in parents:
            where = where.setdefault(part, {})
        where[last] = value
    return node


@given(
    st.lists(st.sampled_from(sorted(REQUESTS)), unique=True),
    st.lists(st.sampled_from(sorted(REQUESTS)), unique=True),
)
def test_requests_freeze_exactly_when_granted(asked: list[str], granted: list[str]) -> None:
    draft = {
        "title": "t",
        "nodes": [node_with(asked)],
        "grants": [{"node": "n1", "capability": c, "reason": "needed"} for c in granted],
    }
    missing = sorted(set(asked) - set(granted))
    if missing:
        with pytest.raises(ManifestInvalid) as info:
            validate("plan", draft)
        paths = sorted(p for p, r in info.value.problems if r.startswith("grant_required"))
        assert paths == sorted(f"nodes[0].{REQUESTS[c][2]}" for c in missing)
        return
    plan = validate("plan", draft)
    assert isinstance(plan, PlanManifest)
    policy, grants = policy_for(plan, plan.nodes[0])
    assert sorted(policy.granted) == sorted(asked)
    assert sorted(g.capability for g in grants) == sorted(asked)
    assert all(g.reason == "needed" for g in grants)
    assert check(policy) == []  # what the plan grants, the runner allows
    used = {c for c, _ in policy.used_capabilities()}
    # host networking subsumes network access: one network mode is used; secrets are
    # environment values, not a container setting
    expected = set(asked) - ({"network"} if "host_network" in asked else set()) - {"secrets"}
    assert used == expected


def test_grant_problems_are_reported_with_paths() -> None:
    draft = {
        "title": "t",
        "nodes": [node_with([])],
        "grants": [
            {"node": "ghost", "capability": "network", "reason": "x"},
            {"node": "n1", "capability": "network", "reason": "x"},
            {"node": "n1", "capability": "network", "reason": "y"},
        ],
    }
    with pytest.raises(ManifestInvalid) as info:
        validate("plan", draft)
    assert sorted(p for p, _ in info.value.problems) == ["grants[0].node", "grants[2]"]
    draft["grants"] = [{"node": "n1", "capability": "network", "reason": ""}]
    with pytest.raises(ManifestInvalid) as info:
        validate("plan", draft)
    assert [p for p, _ in info.value.problems] == ["grants[0].reason"]


def test_policy_for_maps_plan_fields() -> None:
    draft = {
        "title": "t",
        "nodes": [
            {
                **node_with(["network", "host_mount"]),
                "budgets": {"memory_bytes": 64 << 20},
                "requests": {
                    "host_mounts": [{"source": "/srv", "target": "/data"}],
                    "pids": 32,
                    "user": "1000:1000",
                },
            }
        ],
        "grants": [
            {"node": "n1", "capability": "network", "reason": "fetch"},
            {"node": "n1", "capability": "host_mount", "reason": "data"},
        ],
    }
    plan = validate("plan", draft)
    assert isinstance(plan, PlanManifest)
    policy, grants = policy_for(plan, plan.nodes[0])
    assert policy.network_mode == "bridge"
    assert policy.memory_bytes == 64 << 20
    assert policy.pids_limit == 32
    assert policy.user == "1000:1000"
    assert [(m.source, m.target, m.read_only) for m in policy.host_mounts] == [
        ("/srv", "/data", True)
    ]
    assert [g.capability for g in grants] == ["network", "host_mount"]
    mount = create_kwargs(policy)["mounts"][0]
    assert (mount["Source"], mount["Target"], mount["ReadOnly"]) == ("/srv", "/data", True)


def test_policy_for_refuses_an_unvalidated_plan() -> None:
    plan = PlanManifest.model_validate({"title": "t", "nodes": [node_with(["privileged"])]})
    with pytest.raises(PolicyViolation):
        policy_for(plan, plan.nodes[0])
