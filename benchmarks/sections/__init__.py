"""One module per measured property; each has ``run(library, spec) -> list of records``.

A record is a plain dict (JSON) with ``section``, ``measure``, ``library``,
``algorithm``, ``value`` (median), ``unit``, ``ref`` (median ratio to the section's
reference, e.g. the floor), ``samples`` and ``ratios`` (one per repeat), ``status``
(empty, or why there is no number) and ``note``.
"""
