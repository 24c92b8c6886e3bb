"""The terminal UI (``steve tui``, docs/tui.md): the run's stage machine, the plan
DAG with live node states, the selected node's log, manifests in place, and keys
for the next allowed command.

:mod:`steve.tui.data` reads the repository, :mod:`steve.tui.follow` follows the
event log, :mod:`steve.tui.app` is the Textual application.  Textual is
imported only by ``steve.tui.app``.
"""
