"""Fixtures for the integrations: a listener that records events, TestClient imported quietly."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from limitor.listeners import LimitEvent

with warnings.catch_warnings():
    # Starlette >= 1.x warns that its TestClient prefers the httpx2 fork over httpx; the
    # client works the same, and our transports are for httpx itself.
    warnings.filterwarnings("ignore", message=r".*httpx2.*")
    import starlette.testclient  # noqa: F401


class Recorder:
    """A listener that keeps every event, by method."""

    def __init__(self) -> None:
        self.events: list[tuple[str, LimitEvent]] = []

    def on_admitted(self, event: LimitEvent) -> None:
        self.events.append(("admitted", event))

    def on_waited(self, event: LimitEvent) -> None:
        self.events.append(("waited", event))

    def on_rejected(self, event: LimitEvent) -> None:
        self.events.append(("rejected", event))

    def on_backend_error(self, event: LimitEvent) -> None:
        self.events.append(("backend_error", event))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def of(self, kind: str) -> list[LimitEvent]:
        return [event for name, event in self.events if name == kind]


@pytest.fixture
def recorder() -> Any:
    return Recorder()
