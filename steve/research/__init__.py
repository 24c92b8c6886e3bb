"""RESEARCH: scope, search, fetch and mirror, extract, cited summaries, freeze.

A layer beside porcelain (it uses the repository, the policy gate and the
LLM layer; the CLI uses it).  One module per concept:

- :mod:`steve.research.records`: the mirror's object model (a fetched page is a
  content blob plus a source record, found by URL through
  ``refs/research/mirror/``);
- :mod:`steve.research.policy`: a question's source policy and budget;
- :mod:`steve.research.scope`: the run's scope (per design question), recorded
  under ``refs/research/scope/<run-id>``;
- :mod:`steve.research.fetch`: fetching under the policy and the gate,
  mirroring in batches, offline answers, refresh, budget accounts;
- :mod:`steve.research.imports`: seeding the mirror from a directory;
- :mod:`steve.research.index`: the lazy full-text index of the mirror;
- :mod:`steve.research.search`: search providers (local FTS5, SearxNG) and
  recorded searches;
- :mod:`steve.research.extract`: the main text of mirrored bytes.
"""
