"""What ``steve log`` walks and how ``--graph`` draws it.

:func:`log_starts` turns the command line into start ids: revisions, runs
(``--run``: a run's latest manifests), every ref (``--all``), or by default
the current run's latest manifests, else HEAD.  :class:`Graph` draws git's
lanes: ``*`` for the manifest, ``|`` for a lane going on, ``/`` and ``\\``
where lanes fork, merge or shift; it returns text, the CLI prints it.
"""

from __future__ import annotations

from collections.abc import Sequence

from steve.errors import UnknownRevision, WrongObjectType
from steve.objects.oid import ObjectId
from steve.porcelain.history import LogEntry, peel_to_manifest
from steve.porcelain.runs import current_run, find_run, run_heads
from steve.record import Record
from steve.repo import Repo

_set = object.__setattr__  # a frozen record's fields are set once, in __init__


def log_starts(
    repo: Repo,
    revs: Sequence[str] = (),
    *,
    runs: Sequence[str] = (),
    all_refs: bool = False,
) -> list[ObjectId]:
    """Where ``steve log`` starts: ``revs``, the latest manifests of each run in
    ``runs`` (id, prefix or name), and with ``all_refs`` every ref that leads to a
    manifest (run refs included; refs to trees and blobs are skipped).  With none
    of them: the current run's latest manifests, else HEAD."""
    starts = [repo.rev_parse(r) for r in revs]
    for spec in runs:
        found = find_run(repo, spec)
        heads = run_heads(repo, found.id)
        if not heads:
            raise UnknownRevision(f"run:{spec}", f"run {found.id} has no manifests yet")
        starts += heads
    if all_refs:
        for ref in repo.list_refs("refs/"):
            if ref.target is None:
                continue
            try:
                starts.append(peel_to_manifest(repo, ref.target))
            except WrongObjectType:  # a ref to a tree or blob: nothing to walk
                continue
        if not starts:
            raise UnknownRevision("--all", "no ref leads to a manifest")
    if starts or revs or runs or all_refs:
        return list(dict.fromkeys(starts))
    run = current_run(repo)
    if run is not None:
        heads = run_heads(repo, run.id)
        if heads:
            return heads
    head = repo.head()
    if head is None or head.target is None:
        raise UnknownRevision("HEAD", "no current run with manifests and HEAD points at nothing")
    return [head.target]


class GraphRows(Record):
    """The graph around one entry: ``mark`` goes before its first text line,
    ``pad`` before its other lines, then the ``after`` rows on their own."""

    __match_args__ = ("mark", "pad", "after")
    __slots__ = __match_args__
    mark: str
    pad: str
    after: tuple[str, ...]

    def __init__(self, mark: str, pad: str, after: tuple[str, ...]) -> None:
        _set(self, "mark", mark)
        _set(self, "pad", pad)
        _set(self, "after", after)


class Graph:
    """git's ``log --graph`` lanes, one column per line of descent.

    A lane holds the id the walk expects next in it.  For each entry: its
    lane (a new one at the right if no lane expects it) gets ``*``; then its
    parents take its place (the first parent in its lane, the others in new
    lanes just right of it), a parent some lane already expects joins that
    lane, and the rows after the entry move every lane one column per row
    toward its new place (``\\`` right, ``/`` left, ``|`` staying).
    """

    def __init__(self) -> None:
        self.lanes: list[bytes] = []

    def rows(self, entry: LogEntry) -> GraphRows:
        raw = entry.oid.raw
        if raw not in self.lanes:
            self.lanes.append(raw)
        col = self.lanes.index(raw)
        parents = [p.raw for p in entry.parents]
        old = self.lanes
        # the lanes after this entry, each with where it starts
        moving: list[tuple[int, bytes]] = [(i, lane) for i, lane in enumerate(old[:col])]
        moving += [(col, p) for p in dict.fromkeys(parents)]
        moving += [(i, lane) for i, lane in enumerate(old) if i > col]
        new: list[bytes] = []
        for _, lane in moving:
            if lane not in new:
                new.append(lane)
        self.lanes = new
        width = max(len(old), len(new))
        mark = " ".join("*" if i == col else "|" for i in range(len(old)))
        if len(parents) > 1:
            mark = mark.ljust(2 * width - 1)
        pad = " ".join("|" if i != col or parents else " " for i in range(len(old))).rstrip()
        return GraphRows(mark + " ", (pad + " ") if pad else "", self._moves(moving, new))

    @staticmethod
    def _moves(moving: list[tuple[int, bytes]], new: list[bytes]) -> tuple[str, ...]:
        """Rows that carry each lane from its start column to its place in ``new``."""
        pos = [start for start, _ in moving]
        target = [new.index(lane) for _, lane in moving]
        rows: list[str] = []
        while pos != target:
            cells = [" "] * (2 * max(max(pos), max(target)) + 3)
            nxt = []
            for x, t in zip(pos, target, strict=True):
                if t > x:
                    cells[2 * x + 1] = "\\"
                    nxt.append(x + 1)
                elif t < x:
                    cells[2 * x - 1] = "/"
                    nxt.append(x - 1)
                else:
                    cells[2 * x] = "|"
                    nxt.append(x)
            rows.append("".join(cells).rstrip())
            pos = nxt
        return tuple(rows)

    def prefix(self, entry: LogEntry) -> str:
        """The lane marks before the entry's line (rows after it are dropped)."""
        return self.rows(entry).mark
