"""RESEARCH: scope, search, fetch and mirror, extract, cited summaries, freeze.

A layer beside porcelain (it uses the repository, the policy gate and the
LLM layer; the CLI uses it).  :mod:`steve.research.records` is the mirror's
object model: a fetched page is a content blob plus a source record, found by
URL through ``refs/research/mirror/``.
"""
