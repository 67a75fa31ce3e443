"""OpenTelemetry metrics for limiters: a :class:`~limitor.listeners.Listener`.

Attach one listener to any number of limiters::

    from limitor.contrib.otel import MetricsListener

    metrics = MetricsListener()          # the global MeterProvider, or meter_provider=
    bucket.add_listener(metrics)

It records, with the attribute ``limitor.limiter`` (the limiter's ``name``, or
``"unnamed"``) and optionally ``limitor.key``:

* ``limitor.admitted`` (counter, ``{request}``): requests admitted, at once or after waiting;
* ``limitor.rejected`` (counter, ``{request}``): requests refused (policing, timeout);
* ``limitor.wait`` (histogram, ``s``): the wait of every admitted request (0 when at once);
* ``limitor.backend_errors`` (counter, ``{error}``): failures of the limit's backend.

Needs only the OpenTelemetry API (``pip install "limitor[otel]"``); configure an SDK
``MeterProvider`` and exporter as usual in the application.
"""

from __future__ import annotations

from typing import Any

from limitor.contrib._common import missing
from limitor.listeners import LimitEvent

try:
    from opentelemetry import metrics
except ImportError as error:  # pragma: no cover - depends on the environment
    raise missing("limitor.contrib.otel", "otel", error) from error

__all__ = ("MetricsListener",)


class MetricsListener:
    """A listener that counts admissions and refusals and records waits.

    Args:
        meter_provider: where the instruments come from (default: the global provider).
        key_attribute: add the key (user, host...) as the attribute ``limitor.key``.
            Off by default: per-user keys make one time series per user.
    """

    __slots__ = ("_admitted", "_errors", "_key_attribute", "_rejected", "_wait")

    def __init__(
        self, meter_provider: metrics.MeterProvider | None = None, *, key_attribute: bool = False
    ) -> None:
        provider = metrics.get_meter_provider() if meter_provider is None else meter_provider
        meter = provider.get_meter("limitor")
        self._admitted = meter.create_counter(
            "limitor.admitted", unit="{request}", description="Requests admitted by a limiter"
        )
        self._rejected = meter.create_counter(
            "limitor.rejected", unit="{request}", description="Requests refused by a limiter"
        )
        self._wait = meter.create_histogram(
            "limitor.wait", unit="s", description="Seconds admitted requests waited"
        )
        self._errors = meter.create_counter(
            "limitor.backend_errors", unit="{error}", description="Failures of a limit's backend"
        )
        self._key_attribute = bool(key_attribute)

    def _attributes(self, event: LimitEvent) -> dict[str, Any]:
        attributes: dict[str, Any] = {"limitor.limiter": event.name or "unnamed"}
        if self._key_attribute and event.key is not None:
            attributes["limitor.key"] = str(event.key)
        return attributes

    def on_admitted(self, event: LimitEvent) -> None:
        """Count the admission and record its wait."""
        attributes = self._attributes(event)
        self._admitted.add(1, attributes)
        self._wait.record(event.wait, attributes)

    def on_waited(self, event: LimitEvent) -> None:
        """Nothing more: the wait was recorded by :meth:`on_admitted`."""

    def on_rejected(self, event: LimitEvent) -> None:
        """Count the refusal."""
        self._rejected.add(1, self._attributes(event))

    def on_backend_error(self, event: LimitEvent) -> None:
        """Count the backend's failure."""
        self._errors.add(1, self._attributes(event))
