"""One adapter module per library, each driving its library the way a user would.

Every module defines ``LIBRARY`` (the name in the table), ``DISTRIBUTIONS`` (the installed
packages whose versions are reported) and up to four functions, each returning a list of
cases (:mod:`benchmarks.libraries.base`); a case the library cannot do is a
:class:`~benchmarks.libraries.base.Unavailable` that says why:

* ``timed_cases()``: uncontended per-call overhead (statements timed in a loop).
* ``shapers()``: blocking acquirers for the real-time sections (shaping, fairness).
* ``keyed()``: per-key limiters for the 100,000-key memory and first-hit section.
* ``redis_cases(url)``: policing decisions against a shared Redis.

Adapters import their library inside those functions, so a missing library becomes a row
that says "not installed" instead of a crash.
"""
