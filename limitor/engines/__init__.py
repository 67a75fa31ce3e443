"""Pure admission arithmetic, one module per algorithm (no clocks, locks or I/O).

Every engine implements the same rule (an idle limiter admits ``burst`` units at once,
then ``rate`` units per second) with its own bookkeeping; see :mod:`limitor.engines._base`.
"""

from __future__ import annotations

from limitor.engines._base import Decision, Engine, EngineState
from limitor.engines.gcra import GcraLeakyBucket, GcraState, GcraVirtualScheduling, LctState
from limitor.engines.leaky_bucket import LeakyBucket, LevelState
from limitor.engines.token_bucket import TokenBucket, TokenState

__all__ = (
    "ENGINES",
    "Decision",
    "Engine",
    "EngineState",
    "GcraLeakyBucket",
    "GcraState",
    "GcraVirtualScheduling",
    "LctState",
    "LeakyBucket",
    "LevelState",
    "TokenBucket",
    "TokenState",
)

ENGINES: dict[str, type[Engine]] = {  # type: ignore[type-arg]
    engine.name: engine
    for engine in (LeakyBucket, TokenBucket, GcraVirtualScheduling, GcraLeakyBucket)
}
"""Engine classes by algorithm name (``"leaky_bucket"``, ``"token_bucket"``, ``"gcra"``,
``"gcra_leaky_bucket"``)."""
