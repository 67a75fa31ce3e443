"""The Lua scripts, one per verb, each the shared prelude followed by the verb's body."""

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
    scripts = {}
    for verb in VERBS:
        source = common + "\n" + folder.joinpath(f"{verb}.lua").read_text(encoding="utf-8")
        sha = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()
        scripts[verb] = Script(verb, source, sha)
    return scripts


SCRIPTS = _load()
"""Every verb's script, by verb name."""
