"""``steved``: one repository served over a unix socket (see docs/daemon.md).

The layer sits above porcelain and beside the CLI: :mod:`protocol` (frames),
:mod:`paths` (where the socket, pid and lock files live), :mod:`server` (the
socket server, the single writer queue, event streams), :mod:`client`,
:mod:`metrics` (the loopback health and Prometheus listener).  What a forwarded
command *does* is injected by the CLI (``steve.cli.daemon``), so this layer
never imports click.
"""
