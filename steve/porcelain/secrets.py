"""The secrets vault (issue 16, M13 / F-SEC-001..005).

A secret is a name, a version and either a value or the command of an
external secret (``pass show x``, ``op read ...``, ``vault kv get ...``).
Both live only in the ``secrets`` table of the encrypted ``steve.db``; an
event records each set and removal with the name and version, never the
value.  Values are handed out only for a build (:func:`resolve`), to be
injected into a step's container at create time, and to build the redactor
of everything STEVE writes during that build (:func:`redactor_for`).

External commands are split with :func:`shlex.split` (no shell: nothing in
them is interpreted), run with no standard input and a timeout; their
standard output, less one trailing newline, is the value.  A failure is a
:class:`~steve.errors.SecretCommandFailed` that says how it failed (exit
status, timeout) and never what the command printed.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from steve.errors import (
    BadSecretCommand,
    BadSecretName,
    SecretCommandFailed,
    SecretNotFound,
    WeakSecretValue,
)
from steve.redact import Redactor, check_secret
from steve.repo import Repo
from steve.store.base import SecretRecord

SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
COMMAND_TIMEOUT_S = 30.0
MAX_VALUE_BYTES = 64 * 1024

SecretKind = Literal["value", "command"]


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown about a secret: never its value."""

    name: str
    version: int
    kind: SecretKind
    created: int
    who: str
    command: str | None = None  # an external secret's command line (not a value)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "created": self.created,
            "who": self.who,
        }
        if self.command is not None:
            out["command"] = self.command
        return out


@dataclass(frozen=True, slots=True)
class ResolvedSecret:
    """A secret's value for one build (never stored anywhere else)."""

    name: str
    version: int
    value: bytes

    def __repr__(self) -> str:  # never print the value by accident
        return f"ResolvedSecret({self.name!r}, version={self.version})"


def check_secret_name(name: str) -> str:
    """``name`` if it can name a secret (an environment variable name), else BadSecretName."""
    if not SECRET_NAME.fullmatch(name):
        raise BadSecretName(name)
    return name


def _info(record: SecretRecord) -> SecretInfo:
    kind: SecretKind = "command" if record.kind == "command" else "value"
    command = record.data.decode("utf-8") if kind == "command" else None
    return SecretInfo(record.name, record.version, kind, record.created, record.who, command)


def _who(repo: Repo) -> str:
    return f"{repo.identity.name} <{repo.identity.email}>"


def command_argv(name: str, command: str) -> list[str]:
    """The argv of an external secret's ``command`` (shlex, no shell)."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise BadSecretCommand(name, str(exc)) from None
    if not argv:
        raise BadSecretCommand(name, "the command is empty")
    if "\0" in command:
        raise BadSecretCommand(name, "a NUL byte in the command")
    return argv


def set_secret(
    repo: Repo,
    name: str,
    value: bytes | None = None,
    *,
    command: str | None = None,
    now: int | None = None,
) -> SecretInfo:
    """Store ``value`` (or the external ``command``) as the next version of ``name``.

    One transaction: the vault row and a ``secret.set`` event (name, version,
    kind; never the value).  The value is checked against the redactor's
    rules first (:func:`steve.redact.check_secret`).
    """
    check_secret_name(name)
    if (value is None) == (command is None):
        raise ValueError("give exactly one of value and command")
    if command is not None:
        command_argv(name, command)
        kind, data = "command", command.encode("utf-8")
    else:
        assert value is not None
        if len(value) > MAX_VALUE_BYTES:
            raise WeakSecretValue(name, f"longer than {MAX_VALUE_BYTES} bytes")
        check_secret(name, value)
        kind, data = "value", bytes(value)
    stamp = int(time.time()) if now is None else now
    with repo.transaction() as tx:
        old = tx.read_secret(name)
        version = 1 if old is None else old.version + 1
        record = SecretRecord(name, version, kind, data, stamp, _who(repo))
        tx.put_secret(record)
        tx.emit("secret.set", {"name": name, "version": version, "kind": kind})
    return _info(record)


def remove_secret(repo: Repo, name: str, *, now: int | None = None) -> SecretInfo:
    """Drop the value of ``name`` (a tombstone keeps its version); a ``secret.removed`` event."""
    check_secret_name(name)
    stamp = int(time.time()) if now is None else now
    with repo.transaction() as tx:
        old = tx.read_secret(name)
        if old is None or old.kind == "removed":
            raise SecretNotFound(name)
        tx.put_secret(SecretRecord(name, old.version, "removed", b"", stamp, _who(repo)))
        tx.emit("secret.removed", {"name": name, "version": old.version})
    return _info(old)


def list_secrets(repo: Repo) -> list[SecretInfo]:
    """Every secret in the vault, by name (no values)."""
    return [_info(r) for r in repo.list_secrets() if r.kind != "removed"]


def _record(repo: Repo, name: str) -> SecretRecord:
    record = repo.get_secret(check_secret_name(name))
    if record is None or record.kind == "removed":
        raise SecretNotFound(name)
    return record


def secret_info(repo: Repo, name: str) -> SecretInfo:
    return _info(_record(repo, name))


def run_command(name: str, command: str, timeout_s: float = COMMAND_TIMEOUT_S) -> bytes:
    """Run an external secret's command; its output less one trailing newline."""
    argv = command_argv(name, command)
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise SecretCommandFailed(name, f"no answer within {timeout_s:g}s") from None
    except OSError as exc:
        raise SecretCommandFailed(
            name, f"cannot run {argv[0]!r}: {exc.strerror or type(exc).__name__}"
        ) from None
    if done.returncode != 0:
        raise SecretCommandFailed(name, f"exit status {done.returncode} (output not shown)")
    value = done.stdout
    if value.endswith(b"\r\n"):
        value = value[:-2]
    elif value.endswith(b"\n"):
        value = value[:-1]
    if len(value) > MAX_VALUE_BYTES:
        raise SecretCommandFailed(name, f"printed more than {MAX_VALUE_BYTES} bytes")
    try:
        check_secret(name, value)
    except WeakSecretValue as exc:
        raise SecretCommandFailed(name, f"its output is unusable: {exc.detail}") from None
    return value


def resolve(
    repo: Repo, names: Iterable[str], *, timeout_s: float = COMMAND_TIMEOUT_S
) -> dict[str, ResolvedSecret]:
    """The values of ``names`` for one build (external commands run now)."""
    out: dict[str, ResolvedSecret] = {}
    for name in sorted(set(names)):
        record = _record(repo, name)
        if record.kind == "command":
            value = run_command(name, record.data.decode("utf-8"), timeout_s)
        else:
            value = record.data
        out[name] = ResolvedSecret(name, record.version, value)
    return out


def redactor_for(repo: Repo, resolved: Mapping[str, ResolvedSecret] | None = None) -> Redactor:
    """The redactor of a build: every stored value plus the resolved external ones."""
    values = {r.name: r.data for r in repo.list_secrets() if r.kind == "value"}
    values.update({name: s.value for name, s in (resolved or {}).items()})
    return Redactor(values)
