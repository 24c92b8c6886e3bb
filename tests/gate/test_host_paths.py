"""Every code path in steve/ that touches the host goes through HostAction, or is on the
explicit, justified list below.

The scan (an AST walk of every module) finds the calls that write, rename, delete or
change files, start or signal processes, or create databases and git repositories:
``subprocess``/``pty``/``shutil`` anything, ``os`` calls that change the file system or
processes, ``tempfile`` creators, ``open(..., 'w'|'a'|'x'|'+')``, ``Path`` methods
that write (``write_text``, ``write_bytes``, ``mkdir``, ``rename``, ``replace``,
``unlink``, ``rmdir``, ``touch``, ``chmod``, ``symlink_to``...), dulwich's
``init``/``init_bare`` and SQLite's ``connect``.  Each site, named by (module,
function), must be either

* a HOST ACTION: a function reached only from the ``execute`` method of a class that
  implements the HostAction protocol (``gate_action``, ``dry_run``, ``execute``,
  ``record``), checked through the call graph; or
* ALLOWED with the reason it is not one: writes inside the repository's own
  ``.steve/`` directory, files the user named on the command line for exactly that
  purpose (``export-git PATH``, ``STEVE_LOG_FILE``, the signing identity directory of
  ``steve identity``), and signal-0 probes that change nothing.

A new host-touching site fails this test until it goes through HostAction or is added
here with its reason; an entry that no longer matches anything fails it too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import steve

ROOT = Path(steve.__file__).parent
PROJECT = ROOT.parent

MODULE_CALLS: dict[str, frozenset[str] | None] = {
    "subprocess": None,  # None: every function of the module
    "pty": None,
    "shutil": None,
    "tempfile": frozenset(
        {"mkdtemp", "mkstemp", "NamedTemporaryFile", "TemporaryDirectory", "SpooledTemporaryFile"}
    ),
    "os": frozenset(
        {
            "system", "popen", "execv", "execve", "execvp", "execvpe", "execl", "execlp",
            "spawnv", "spawnl", "posix_spawn", "posix_spawnp", "fork", "rename", "replace",
            "remove", "unlink", "rmdir", "removedirs", "mkdir", "makedirs", "chmod", "chown",
            "symlink", "link", "truncate", "open", "kill", "killpg", "mkfifo", "utime",
            "lchown", "fchmod", "fchown", "ftruncate",
        }
    ),
    "sqlite": frozenset({"connect"}),
    "GitRepo": frozenset({"init", "init_bare"}),
}
PATH_METHODS = frozenset(
    {
        "write_text", "write_bytes", "unlink", "rename", "mkdir", "rmdir", "touch", "chmod",
        "symlink_to", "hardlink_to", "link_to",
    }
)  # fmt: skip
WRITE_MODES = frozenset("wax+")

# (module, function) reached only through a HostAction's execute (checked below).
HOST_ACTIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("steve/porcelain/deploy.py", "write_files"),
        ("steve/porcelain/deploy.py", "_fsync_dir"),
    }
)

INSIDE_STEVE = "writes only inside the repository's own .steve/ directory"
EXPORT = (
    "`steve export-git PATH` / `verify-git`: the user named the git repository to write; "
    "writes stay inside it (packs written to a temporary file and renamed into place)"
)
IDENTITY = (
    "`steve identity` and checkpoint signing: the signing identity's own directory "
    "(STEVE_IDENTITY_DIR, kept outside the repository by design, mode 0700/0600)"
)
PROBE = "signal 0: asks whether a process exists, changes nothing"
DAEMON = (
    "steved: its socket, pid, lock and log files inside the repository's own .steve/ "
    "(modes 0600), and starting or stopping its own process (`steve daemon start|stop`)"
)
BACKUP = (
    "`steve backup PATH` / `steve restore BACKUP DIR`: the user named the directory to "
    "write; the copy is built in a private temporary directory beside it and renamed "
    "into place (a failure removes it)"
)

ALLOWED: dict[tuple[str, str], str] = {
    ("steve/cli/app.py", "EventSink.open"): (
        "STEVE_LOG_FILE: the user named the log file to append to"
    ),
    ("steve/cli/app.py", "exit_for"): "opens /dev/null for a reader that went away",
    ("steve/cli/plumbing.py", "hash_object"): (
        "opens read-only the files the user named to hash (os.open: one fstat, no file object)"
    ),
    ("steve/events/signing.py", "record_checkpoint"): IDENTITY,
    ("steve/exec/owners.py", "owner_alive"): PROBE,
    ("steve/gitbridge/pack.py", "_alive"): PROBE,
    ("steve/gitbridge/export.py", "_check_writable"): EXPORT,
    ("steve/gitbridge/pack.py", "PackWriter._open"): EXPORT,
    ("steve/gitbridge/pack.py", "PackWriter.abort"): EXPORT,
    ("steve/gitbridge/pack.py", "PackWriter.finish"): EXPORT,
    ("steve/gitbridge/pack.py", "remove_stale_packs"): EXPORT,
    ("steve/gitbridge/target.py", "open_or_create"): EXPORT,
    ("steve/repo.py", "Repo.init"): (
        "`steve init`: builds .steve/ in a private temporary directory beside it and renames "
        "it into place"
    ),
    ("steve/store/files.py", "write_private"): (
        "the repository config (.steve/config) and the signing identity's files, each "
        "written to a private temporary file and renamed into place"
    ),
    ("steve/store/sqlcipher.py", "secure_directory"): INSIDE_STEVE + " (mode 0700)",
    ("steve/store/sqlcipher.py", "secure_file"): INSIDE_STEVE + " (mode 0600)",
    ("steve/store/sqlcipher.py", "_secure_files"): INSIDE_STEVE + " (mode 0600)",
    ("steve/store/sqlcipher.py", "connect"): INSIDE_STEVE + ": steve.db and events.db",
    ("steve/store/lock.py", "DirLock.acquire"): INSIDE_STEVE + ": opens .steve/ to flock it",
    ("steve/store/rekey.py", "export_database"): INSIDE_STEVE + ": .steve/rekey/",
    ("steve/store/rekey.py", "recover"): INSIDE_STEVE + ": finishes or undoes a rekey",
    ("steve/store/rekey.py", "rekey_files"): INSIDE_STEVE + ": .steve/rekey/",
    ("steve/store/snapshot.py", "copy_private"): BACKUP,
    ("steve/store/snapshot.py", "snapshot_databases"): BACKUP + " (a damaged copy is removed)",
    ("steve/store/snapshot.py", "fold_wal"): BACKUP,
    ("steve/store/snapshot.py", "fsync_path"): BACKUP,
    ("steve/porcelain/backup.py", "backup"): BACKUP,
    ("steve/porcelain/backup.py", "restore"): BACKUP,
    ("steve/porcelain/backup.py", "_undo"): BACKUP,
    ("steve/porcelain/backup.py", "_write_plain"): BACKUP,
    ("steve/cli/trust.py", "key_rotate"): IDENTITY,
    ("steve/trust/keys.py", "_private_dir"): IDENTITY,
    ("steve/cli/daemon.py", "daemon_start"): DAEMON,
    ("steve/cli/daemon.py", "daemon_stop"): DAEMON + " (SIGTERM to the daemon of this repository)",
    ("steve/cli/serve.py", "acquire_lock"): DAEMON,
    ("steve/cli/serve.py", "lock_is_held"): DAEMON,
    ("steve/cli/serve.py", "steved"): DAEMON,
    ("steve/daemon/paths.py", "socket_address"): DAEMON + " (an O_PATH descriptor of .steve/)",
    ("steve/daemon/server.py", "Server.bind"): DAEMON,
    ("steve/daemon/server.py", "Server.serve_forever"): DAEMON,
    ("steve/cli/stages.py", "_edit"): (
        "`steve plan --decompose --edit`: the user asked for their $VISUAL/$EDITOR on a "
        "private temporary copy of the plan (the result is validated before anything freezes)"
    ),
    ("steve/porcelain/guide.py", "write_new_file"): (
        "`steve start`: the example project's files (and design.yaml) in the folder the "
        "person runs the guide in, each listed on screen as it is written, never over an "
        "existing file, through a temporary file renamed into place"
    ),
    ("steve/cli/start.py", "_run"): (
        "`steve start`: runs the `steve` command it has just printed (`python -m steve ...`, "
        "no shell), in the project folder, after the person pressed Enter (or --yes)"
    ),
    ("steve/tui/app.py", "SteveTui.action_command"): (
        "`steve tui`'s b/t keys: run `steve build` / `steve test` (`python -m steve`, no "
        "shell) for the run shown, only when the stage machine allows it; those commands "
        "go through the gate themselves"
    ),
    ("steve/porcelain/secrets.py", "run_command"): (
        "an external secret (F-SEC-005): the command the user configured for exactly this "
        "with `steve secret set NAME --command`, run without a shell and with a timeout; its "
        "output is a secret value, never shown"
    ),
}


class _Scan(ast.NodeVisitor):
    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.stack: list[str] = []
        self.sites: list[tuple[str, str, str, int]] = []
        self.calls: list[tuple[str, str, str]] = []  # (module, caller, callee name)
        self.classes: dict[str, set[str]] = {}

    def _scope(self) -> str:
        return ".".join(self.stack) or "<module>"

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes[node.name] = {
            n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node)

    def _site(self, node: ast.Call, what: str) -> None:
        self.sites.append((self.rel, self._scope(), what, node.lineno))

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if name:
            self.calls.append((self.rel, self._scope(), name))
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            allowed = MODULE_CALLS.get(f.value.id, frozenset())
            if allowed is None or f.attr in allowed:
                self._site(node, f"{f.value.id}.{f.attr}")
                self.generic_visit(node)
                return
        if isinstance(f, ast.Attribute) and f.attr in PATH_METHODS:
            self._site(node, f".{f.attr}()")
        elif isinstance(f, ast.Attribute) and f.attr == "replace" and len(node.args) == 1:
            self._site(node, ".replace()")  # Path.replace(target); str.replace takes two
        elif name == "open":
            args = node.args[1:2] if isinstance(f, ast.Name) else node.args[:1]
            modes = [a.value for a in args if isinstance(a, ast.Constant)]
            modes += [
                k.value.value
                for k in node.keywords
                if k.arg == "mode" and isinstance(k.value, ast.Constant)
            ]
            if any(isinstance(m, str) and set(m) & WRITE_MODES for m in modes):
                self._site(node, f"open({modes[0]!r})")
        self.generic_visit(node)


def scan_source(rel: str, source: str) -> _Scan:
    scan = _Scan(rel)
    scan.visit(ast.parse(source))
    return scan


def scan_tree() -> list[_Scan]:
    return [
        scan_source(str(p.relative_to(PROJECT)), p.read_text(encoding="utf-8"))
        for p in sorted(ROOT.rglob("*.py"))
    ]


def test_the_scan_finds_what_touches_the_host() -> None:
    """The scanner is not vacuous: each kind of host-touching call in a sample is found."""
    sample = '''
import os, shutil, subprocess, tempfile
from pathlib import Path
def f(p: Path) -> None:
    open(p, "w")
    p.open("ab")
    p.write_text("x")
    p.replace(p.with_name("y"))
    os.rename("a", "b")
    shutil.rmtree(p)
    subprocess.run(["ls"])
    tempfile.mkdtemp()
    GitRepo.init_bare("x")
def g(p: Path) -> None:
    open(p)
    p.open("rb")
    "a-b".replace("-", "+")
    os.path.join("a", "b")
'''
    scan = scan_source("sample.py", sample)
    assert {s[1] for s in scan.sites} == {"f"}
    assert len(scan.sites) == 9


def test_every_host_touching_site_is_a_host_action_or_justified() -> None:
    found = {(rel, func): what for s in scan_tree() for rel, func, what, _ in s.sites}
    unexplained = sorted(
        f"{rel}:{func} ({what})"
        for (rel, func), what in found.items()
        if (rel, func) not in HOST_ACTIONS and (rel, func) not in ALLOWED
    )
    assert unexplained == [], (
        "code that touches the host outside HostAction; route it through "
        "steve.porcelain.hostaction.perform or justify it in ALLOWED"
    )
    stale = sorted(f"{r}:{f}" for r, f in (*HOST_ACTIONS, *ALLOWED) if (r, f) not in found)
    assert stale == [], "entries that no longer match any host-touching site"
    assert all(reason.strip() for reason in ALLOWED.values())


def test_host_action_sites_are_reached_only_through_a_host_actions_execute() -> None:
    scans = scan_tree()
    protocol = {"gate_action", "dry_run", "execute", "record"}
    host_classes = {
        (s.rel, cls) for s in scans for cls, methods in s.classes.items() if protocol <= methods
    }
    assert ("steve/porcelain/deploy.py", "_Deploy") in host_classes
    callers: dict[str, set[tuple[str, str]]] = {}
    for s in scans:
        for rel, caller, callee in s.calls:
            callers.setdefault(callee, set()).add((rel, caller))
    for rel, func in sorted(HOST_ACTIONS):
        seen: set[tuple[str, str]] = set()
        todo = [(rel, func)]
        entries: set[tuple[str, str]] = set()
        while todo:
            here = todo.pop()
            if here in seen:
                continue
            seen.add(here)
            by = callers.get(here[1].rsplit(".", 1)[-1], set())
            assert by, f"{here} is never called"
            for caller in by:
                cls, _, method = caller[1].rpartition(".")
                if method == "execute" and (caller[0], cls) in host_classes:
                    entries.add(caller)
                elif caller in HOST_ACTIONS:
                    todo.append(caller)
                else:
                    raise AssertionError(f"{rel}:{func} is reached from {caller}, not a HostAction")
        assert entries, f"{rel}:{func} is not reached from any HostAction's execute"
