"""The Lua scripts, one per verb: the shared prelude, the schedule, the verb's body.

``schedule.lua`` (engines/schedule.py in Lua) goes into every verb that reads the free
pieces: all but ``hold``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

__all__ = ("SCRIPTS", "Script")

VERBS = ("reserve", "give_back", "charge", "peek", "hold")


@dataclass(frozen=True, slots=True)
class Script:
    """One verb's script: its source and the SHA1 that EVALSHA names it by."""

    verb: str
    source: str
    sha: str


def _load() -> dict[str, Script]:
    folder = resources.files("limitor.backends.redis").joinpath("scripts")
    common = folder.joinpath("common.lua").read_text(encoding="utf-8")
    schedule = folder.joinpath("schedule.lua").read_text(encoding="utf-8")
    scripts = {}
    for verb in VERBS:
        body = folder.joinpath(f"{verb}.lua").read_text(encoding="utf-8")
        parts = (common, body) if verb == "hold" else (common, schedule, body)
        source = "\n".join(parts)
        sha = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()
        scripts[verb] = Script(verb, source, sha)
    return scripts


SCRIPTS = _load()
"""Every verb's script, by verb name."""
