"""Synthetic arrivals: :class:`Pattern` (Poisson, uniform, bursts, a daily curve), seeded."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Literal

from limitor._checks import check_count, check_not_negative
from limitor.configs import check_positive
from limitor.errors import ConfigError, ConfigTypeError
from limitor.simulation._traces import LONGEST


@dataclass(frozen=True)
class Pattern:
    """Synthetic arrivals, reproducible from their seed.

    Args:
        kind: ``"poisson"`` (random, memoryless), ``"uniform"`` (evenly spaced),
            ``"bursts"`` (``rate * every`` arrivals at once every ``every`` seconds) or
            ``"daily"`` (Poisson whose rate follows a day: lowest at midnight, highest at
            noon, ``1 - depth`` and ``1 + depth`` times ``rate``, over ``period`` seconds).
        rate: mean arrivals per second.
        duration: seconds of arrivals.
        amount: units per arrival, or ``(low, high)`` to draw each uniformly (whole
            numbers when both are ints, as tokens are).
        every: seconds between bursts (``"bursts"``).
        depth: how far the daily curve swings around ``rate``, from 0 to 1 (``"daily"``).
        period: the length of the daily curve's cycle in seconds (``"daily"``).
        keys: spread the arrivals over this many keys (``"user0"``, ``"user1"``...) at
            random; 0 for none.
        seed: the seed of every random choice.

    Raises:
        ConfigError: a value out of range (the message names it).
    """

    kind: Literal["poisson", "uniform", "bursts", "daily"] = "poisson"
    rate: float = 10.0
    duration: float = 60.0
    amount: float | tuple[float, float] = 1.0
    every: float = 1.0
    depth: float = 0.8
    period: float = 86_400.0
    keys: int = 0
    seed: int = 1

    def __post_init__(self) -> None:
        """Check every field."""
        if self.kind not in ("poisson", "uniform", "bursts", "daily"):
            raise ConfigError(f"kind must be poisson, uniform, bursts or daily, got {self.kind!r}")
        check_positive("arrival rate", self.rate)
        if check_positive("duration", self.duration) > LONGEST:
            raise ConfigError(f"duration must be at most {LONGEST:g} s, got {self.duration!r}")
        check_positive("every", self.every)
        check_positive("period", self.period)
        depth = check_not_negative("depth", self.depth)
        if depth > 1:
            raise ConfigError(f"depth must be between 0 and 1, got {self.depth!r}")
        if isinstance(self.amount, tuple):
            if len(self.amount) != 2:
                raise ConfigError(f"amount must be a number or (low, high), got {self.amount!r}")
            low = check_not_negative("amount", self.amount[0])
            high = check_not_negative("amount", self.amount[1])
            if low > high:
                raise ConfigError(f"amount range {self.amount!r} has low above high")
        else:
            check_not_negative("amount", self.amount)
        check_count("keys", self.keys, minimum=0)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigTypeError(f"seed must be a whole number, got {self.seed!r}")

    @property
    def burst_size(self) -> int:
        """Arrivals per burst (``"bursts"``): ``rate * every``, at least 1."""
        return max(1, round(self.rate * self.every))

    @property
    def expected(self) -> float:
        """The expected number of arrivals (exact for uniform and bursts)."""
        if self.kind == "uniform":
            return math.floor(self.rate * self.duration)
        if self.kind == "bursts":
            return self.burst_size * math.ceil(self.duration / self.every)
        return self.rate * self.duration

    @property
    def largest_amount(self) -> float:
        """The largest amount one arrival can have."""
        return float(self.amount[1] if isinstance(self.amount, tuple) else self.amount)

    def __iter__(self) -> Iterator[tuple[float, float, Hashable]]:
        """The arrivals, ``(time, amount, key)``, in time order."""
        rng = random.Random(self.seed)
        amount = self._amounts(rng)
        keys = self.keys
        names = [f"user{index}" for index in range(keys)]
        for moment in self._times(rng):
            yield moment, amount(), (names[rng.randrange(keys)] if keys else None)

    def _amounts(self, rng: random.Random) -> Callable[[], float]:
        if not isinstance(self.amount, tuple):
            fixed = float(self.amount)
            return lambda: fixed
        low, high = self.amount
        draw = rng.random
        if isinstance(low, int) and isinstance(high, int):
            span = high - low + 1
            return lambda: float(low + min(int(draw() * span), span - 1))
        return lambda: low + (high - low) * draw()

    def _times(self, rng: random.Random) -> Iterator[float]:
        rate, duration = float(self.rate), float(self.duration)
        if self.kind == "uniform":
            for index in range(math.floor(rate * duration)):
                yield index / rate
        elif self.kind == "bursts":
            size, every = self.burst_size, float(self.every)
            for index in range(math.ceil(duration / every)):
                moment = index * every
                for _ in range(size):
                    yield moment
        else:
            peak = rate * (1 + self.depth) if self.kind == "daily" else rate
            omega = 2 * math.pi / self.period
            now = 0.0
            while True:
                now += rng.expovariate(peak)
                if now >= duration:
                    return
                if self.kind == "daily":
                    share = (1 - self.depth * math.cos(omega * now)) / (1 + self.depth)
                    if rng.random() >= share:
                        continue
                yield now
