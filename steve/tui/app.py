"""``steve tui``: the run's stage machine, the plan DAG with live node states, the
selected node's live log, manifests and receipts in place, and keys for the next
allowed command (docs/tui.md).

The screen reads the repository only (:mod:`steve.tui.data`) and follows the
event log in a thread (:mod:`steve.tui.follow`); a timer applies what changed
every ``tick`` seconds, in one batch.  The action keys run the real command,
``steve build``/``steve test``, as a child process whose output fills the
Output tab; the TUI itself never writes to the repository.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import ClassVar, TypeVar

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Log,
    OptionList,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option

from steve.errors import SteveError
from steve.events import EventLog
from steve.porcelain.escape import escape_text
from steve.porcelain.runs import Stage
from steve.repo import Repo
from steve.tui.data import (
    Action,
    ManifestEntry,
    NodeState,
    PlanGraph,
    StageView,
    manifest_entries,
    manifest_text,
    plan_graph,
    receipt_states,
    stage_view,
)
from steve.tui.follow import RING_LINES, EventFollower, RunTracker

__all__ = ["HELP", "SteveTui"]

W = TypeVar("W", bound=Widget)

STYLE: dict[NodeState, tuple[str, str]] = {
    NodeState.PENDING: ("·", "dim"),
    NodeState.QUEUED: ("…", "yellow"),
    NodeState.RUNNING: ("▶", "bold yellow"),
    NodeState.PASSED: ("✔", "bold green"),
    NodeState.CACHED: ("✔", "green"),
    NodeState.FAILED: ("✘", "bold red"),
    NodeState.SKIPPED: ("-", "magenta"),
}

HELP = """\
steve tui — keys

  b        steve build   (when the stage machine allows BUILD and a plan exists)
  t        steve test    (when it allows TEST)
  up/down  select a plan node (its log) or a manifest (its text)
  tab      move between the DAG and the manifest list
  l m o    show the Log, Manifest or Output tab
  f        manifest as YAML / JSON
  r        read the run, plan and manifests again
  ?        this help          q  quit (interrupts a command it started)

Panes: the stage machine (current stage highlighted, allowed next stages);
the plan DAG (each node's state, live from the event log); the selected
node's log (its last lines; output arrives when the build spools it);
the run's manifests and receipts; the output of the command a key ran.

Read-only: the TUI reads steve.db and follows events.db; only the commands
the keys run write, exactly as typed at a shell.
"""


def _indent(depth: int) -> str:
    """The DAG's drawing: a node one level below its deepest upstream node."""
    return "" if depth == 0 else "  " * (depth - 1) + "└ "


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: 84; height: auto; border: round $accent; padding: 1 2;
                          background: $surface; }
    """

    def compose(self) -> ComposeResult:
        yield Static(Text(HELP), id="help")


class SteveTui(App[None]):
    """The TUI over one open repository and its event log (the caller closes both)."""

    TITLE = "steve tui"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #stages { height: 3; padding: 0 1; border-bottom: solid $accent; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    #left { width: 40%; min-width: 40; max-width: 64; }
    #dag { height: 1fr; border: round $primary; border-title-align: left; }
    #manifests { height: 12; border: round $primary; }
    #right { width: 1fr; }
    #node-log, #output-log { height: 1fr; border: round $primary; }
    #manifest-view { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("b", "command('b')", "build"),
        Binding("t", "command('t')", "test"),
        Binding("r", "reload", "reload"),
        Binding("l", "tab('log')", "log", show=False),
        Binding("m", "tab('manifest')", "manifest", show=False),
        Binding("o", "tab('output')", "output", show=False),
        Binding("f", "toggle_format", "yaml/json", show=False),
    ]

    def __init__(
        self,
        repo: Repo,
        log: EventLog,
        *,
        run: str | None = None,
        steve_argv: Sequence[str] = ("steve",),
        tick: float = 0.1,
        poll: float = 0.1,
        ring: int = RING_LINES,
        follow: bool = True,
    ) -> None:
        super().__init__()
        self.repo = repo
        self.events = log
        self.run_spec = run
        self.steve_argv = tuple(steve_argv)
        self.tick = tick
        self.poll = poll
        self.ring = ring
        self.follow = follow
        self.view = StageView(None, (), (), False)
        self.graph: PlanGraph | None = None
        self.tracker = RunTracker(None, ring=ring)
        self.follower: EventFollower | None = None
        self.entries: list[ManifestEntry] = []
        self.node: str | None = None  # the selected node
        self.seen = 0  # lines of the selected node already in the Log widget
        self.placeholder = False  # the Log widget shows the "no output" line
        self.fmt = "yaml"
        self.shown: ManifestEntry | None = None
        self.note = ""
        self.problem: str | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.last_exit: int | None = None
        self._status = ""
        self._stages = ""
        self._listed: list[ManifestEntry] | None = None  # what the manifest list shows

    # --- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(id="stages")
        with Horizontal():
            with Vertical(id="left"):
                yield DataTable(id="dag", cursor_type="row", zebra_stripes=False)
                yield OptionList(id="manifests", markup=False)
            with Vertical(id="right"), TabbedContent(initial="log", id="tabs"):
                with TabPane("Log", id="log"):
                    yield Log(id="node-log", max_lines=self.ring, auto_scroll=True)
                with TabPane("Manifest", id="manifest"), VerticalScroll(id="manifest-view"):
                    yield Static(id="manifest-text", markup=False)
                with TabPane("Output", id="output"):
                    yield Log(id="output-log", max_lines=self.ring, auto_scroll=True)
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        dag = self._get("#dag", DataTable)
        dag.border_title = "plan"
        for label, key in (("", "mark"), ("node", "node"), ("kind", "kind")):
            dag.add_column(label, key=key)
        dag.add_column("state", key="state", width=8)
        dag.add_column("after", key="after")
        self._get("#manifests", OptionList).border_title = "manifests"
        self.load()
        if self.view.run is not None and self.follow:
            self.follower = EventFollower(
                self.events,
                self.view.run.id,
                self.tracker,
                poll=self.poll,
                on_error=self._follow_failed,
            )
            self.follower.start()
        self.set_interval(self.tick, self.drain)
        dag.focus()

    def on_unmount(self) -> None:
        if self.follower is not None:
            self.follower.stop()
            self.follower.join(timeout=5)
        self._interrupt()

    def _live(self) -> bool:
        """Whether the main screen is there (not while the app shuts down)."""
        return bool(self.screen_stack) and self.is_running

    def _get(self, selector: str, kind: type[W]) -> W:
        """A widget of the main screen (the help screen may be on top of it)."""
        return self.screen_stack[0].query_one(selector, kind)

    # --- reading the repository --------------------------------------------------------------

    def load(self) -> None:
        """Read the run, its plan and manifests (again)."""
        try:
            self.view = stage_view(self.repo, self.run_spec)
            run = self.view.run
            graph = None if run is None else plan_graph(self.repo, run.id, self.graph)
            if graph is None or self.graph is None or graph.plan != self.graph.plan:
                states = (
                    {} if graph is None or run is None else receipt_states(self.repo, run.id, graph)
                )
                self.graph = graph
                self.tracker.set_graph(graph, states)
                self._fill_dag()
            self.entries = [] if run is None else manifest_entries(self.repo, run.id)
        except SteveError as exc:
            self.problem = f"{exc.message}: {exc.detail} [{exc.code}]"
        self._fill_stages()
        self._fill_manifests()
        self._fill_status()
        self.refresh_bindings()

    def _fill_stages(self) -> None:
        run = self.view.run
        widget = self._get("#stages", Static)
        if run is None:
            widget.update(Text("no run yet: start one with `steve run new` (then press r)"))
            self.sub_title = ""
            return
        line = Text()
        for i, stage in enumerate(Stage):
            if i:
                line.append(" → ", "dim")
            if stage is run.stage:
                line.append(f" {stage.value} ", "bold reverse")
            elif stage in self.view.allowed:
                line.append(stage.value, "bold underline")
            else:
                line.append(stage.value, "dim")
        nxt = ", ".join(s.value for s in self.view.allowed) or "none (terminal)"
        line.append(f"\nnext allowed: {nxt}", "")
        keys = "  ".join(f"[{a.key}] steve {a.name}" for a in self.view.actions)
        line.append(f"    keys: {keys or 'none'}", "")
        if line.plain != self._stages:
            self._stages = line.plain
            widget.update(line, layout=False)  # a fixed height
        self.sub_title = f"run {run.name} ({run.id}) · {run.stage.value}"

    def _fill_dag(self) -> None:
        dag = self._get("#dag", DataTable)
        dag.clear()
        graph = self.graph
        if graph is None:
            dag.border_title = "plan: none frozen yet"
            return
        dag.border_title = f"plan {graph.plan.short()} · {escape_text(graph.title, one_line=True)}"
        states = self.tracker.states
        for n in graph.nodes:
            state = states.get(n.id, NodeState.PENDING)
            mark, style = STYLE[state]
            dag.add_row(
                Text(mark, style),
                Text(_indent(n.depth) + escape_text(n.id, one_line=True)),
                n.kind,
                Text(state.value, style),
                Text(", ".join(n.upstream) or "—", "dim"),
                key=n.id,
            )
        if self.node not in {n.id for n in graph.nodes}:
            self._select(graph.nodes[0].id if graph.nodes else None)

    def _fill_manifests(self) -> None:
        if self.entries == self._listed:
            return
        self._listed = list(self.entries)
        widget = self._get("#manifests", OptionList)
        keep = widget.highlighted
        widget.clear_options()
        for e in self.entries:
            label = f"{e.label:<16} {e.oid.short()}  {escape_text(e.summary, one_line=True)}"
            widget.add_option(Option(label, id=e.ref))
        if self.entries:
            widget.highlighted = min(keep or 0, len(self.entries) - 1)

    def _fill_status(self) -> None:
        parts = []
        if self.problem:
            parts.append(f"problem: {self.problem}")
        if self.follower is not None:
            parts.append(f"following events.db (event {self.tracker.last_seq})")
        if self.proc is not None:
            parts.append("command running")
        elif self.last_exit is not None:
            parts.append(f"last command exit {self.last_exit}")
        if self.note:
            parts.append(self.note)
        text = " · ".join(parts)
        if text != self._status:  # an unchanged line costs no repaint
            self._status = text
            self._get("#status", Static).update(Text(text), layout=False)  # fixed size

    # --- live updates ------------------------------------------------------------------------

    def drain(self) -> None:
        """Apply what the follower folded since the last tick, in one batch."""
        if not self._live():
            return
        self._show_new_lines()  # first: the rest may read the repository
        changes = self.tracker.take()
        if changes.notes:
            self.note = changes.notes[-1]
        if changes.reload:  # after the lines are painted: reading takes a moment
            self.call_after_refresh(self.load)
        dag = self._get("#dag", DataTable)
        rows = {n.id for n in self.graph.nodes} if self.graph is not None else set()
        for node, state in changes.states.items():
            if node in rows:
                mark, style = STYLE[state]
                dag.update_cell(node, "mark", Text(mark, style))
                dag.update_cell(node, "state", Text(state.value, style))
        self._fill_status()

    def _show_new_lines(self) -> None:
        if self.node is None:
            return
        lines, restart, total = self.tracker.log_since(self.node, self.seen)
        if not lines:
            return
        log = self._get("#node-log", Log)
        if restart or self.placeholder:
            log.clear()
            self.placeholder = False
        log.write_lines(lines)
        self.seen = total

    def _select(self, node: str | None) -> None:
        if node == self.node:
            return
        self.node = node
        self.seen = 0
        log = self._get("#node-log", Log)
        log.clear()
        log.border_title = "no node selected" if node is None else f"log of {node}"
        if node is not None:
            lines, _, total = self.tracker.log_since(node, 0)
            if not lines:
                log.write_line(f"(no output from {node} in the events followed so far)")
            self.placeholder = not lines
            log.write_lines(lines)
            self.seen = total

    def _follow_failed(self, exc: SteveError) -> None:
        text = f"event log: {exc.message}: {exc.detail} [{exc.code}]"
        self.call_from_thread(self._set_problem, text)

    def _set_problem(self, text: str) -> None:
        self.problem = text
        self.follower = None
        self._fill_status()

    @on(DataTable.RowHighlighted, "#dag")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        self._select(None if event.row_key.value is None else str(event.row_key.value))

    @on(OptionList.OptionHighlighted, "#manifests")
    def _manifest(self, event: OptionList.OptionHighlighted) -> None:
        found = [e for e in self.entries if e.ref == event.option.id]
        if found:
            self.shown = found[0]
            self._show_manifest()

    @on(OptionList.OptionSelected, "#manifests")
    def _open_manifest(self, event: OptionList.OptionSelected) -> None:
        self.action_tab("manifest")

    def _show_manifest(self) -> None:
        if not self._live():
            return
        widget = self._get("#manifest-text", Static)
        e = self.shown
        if e is None:
            widget.update("")
            return
        try:
            body = manifest_text(self.repo, e.oid, self.fmt)
        except SteveError as exc:
            body = f"{exc.message}: {exc.detail} [{exc.code}]\n"
        head = f"# {e.label}  {e.ref}\n# {e.oid.hex}\n"
        widget.update(Text(escape_text(head + body)))

    # --- actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "command":
            if self._action(str(parameters[0])) is None:
                return False  # not allowed from this stage: hidden
            return None if self.proc is not None else True  # shown dimmed while one runs
        return True

    def _action(self, key: str) -> Action | None:
        return next((a for a in self.view.actions if a.key == key), None)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_tab(self, name: str) -> None:
        self._get("#tabs", TabbedContent).active = name

    def action_reload(self) -> None:
        self.problem = None
        self.load()
        self._show_manifest()

    def action_toggle_format(self) -> None:
        self.fmt = "json" if self.fmt == "yaml" else "yaml"
        self._show_manifest()

    def action_command(self, key: str) -> None:
        action = self._action(key)
        if action is None or self.proc is not None:
            return
        argv = [*self.steve_argv, *action.argv]
        out = self._get("#output-log", Log)
        out.clear()
        out.border_title = "steve " + " ".join(action.argv)
        out.write_line("$ steve " + " ".join(action.argv))
        self.action_tab("output")
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            out.write_line(f"could not start {argv[0]}: {exc}")
            return
        self.proc = proc
        self.refresh_bindings()
        self._fill_status()
        threading.Thread(target=self._pump, args=(proc,), name="steve-tui-cmd", daemon=True).start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        out = self._get("#output-log", Log)
        with contextlib.suppress(RuntimeError):  # the app closed first
            for line in proc.stdout:
                self.call_from_thread(out.write_line, escape_text(line.rstrip("\n")))
        rc = proc.wait()
        with contextlib.suppress(RuntimeError):
            self.call_from_thread(self._command_done, rc)

    def _command_done(self, rc: int) -> None:
        self.proc = None
        self.last_exit = rc
        if not self._live():
            return
        self._get("#output-log", Log).write_line(f"[exit {rc}]")
        self.load()
        self._show_manifest()

    def _interrupt(self) -> None:
        """Quitting interrupts a command the TUI started (as Ctrl-C would)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
