"""Benchmarks comparing limitor with limitor 0.6 and its peers (not part of the test suite).

Run ``python -m benchmarks`` (or ``nox -s bench``); ``python -m benchmarks --quick`` times
only limitor against the floor, in the current interpreter, in a few seconds. See
``benchmarks/README.md`` for what each section measures and how to read the table.

Layout:

* :mod:`benchmarks.runner`: the coordinator. It prepares one virtualenv per environment
  (our limitor and the peers; limitor 0.6, which has the same package name), starts a
  private ``redis-server`` when one is installed, runs one worker process per library and
  section, and prints and writes the table.
* :mod:`benchmarks.worker`: runs inside an environment; every timing it reports is also a
  ratio to :mod:`benchmarks.floor`, timed in the same process before every repeat.
* :mod:`benchmarks.libraries`: one adapter module per library, driving it as a user would.
* :mod:`benchmarks.sections`: one module per measured property.
"""
