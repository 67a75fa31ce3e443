"""The OpenTelemetry listener, read back through the SDK's in-memory metric reader."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from limitor import PerUserLimiter, SyncLeakyBucket
from limitor.configs import BucketConfig
from limitor.contrib.otel import MetricsListener
from limitor.testing import FakeClock


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Data points by metric name."""
    found: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def test_the_reader_sees_admissions_refusals_and_waits(reader: InMemoryMetricReader) -> None:
    provider = MeterProvider(metric_readers=[reader])
    clock = FakeClock()
    bucket = SyncLeakyBucket(BucketConfig(2, 1), clock=clock)
    bucket.name = "search"
    bucket.add_listener(MetricsListener(meter_provider=provider))
    for _ in range(3):
        bucket.acquire()  # the third waits 0.5 s
    assert not bucket.try_acquire()
    assert not bucket.try_acquire()
    found = points(reader)
    (admitted,) = found["limitor.admitted"]
    (rejected,) = found["limitor.rejected"]
    (waits,) = found["limitor.wait"]
    assert admitted.value == 3 == bucket.stats.admitted
    assert rejected.value == 2 == bucket.stats.rejected
    assert waits.count == 3
    assert waits.sum == pytest.approx(0.5) == bucket.stats.total_wait
    assert waits.max == pytest.approx(0.5)
    assert dict(admitted.attributes) == {"limitor.limiter": "search"}
    assert "limitor.backend_errors" not in found  # nothing failed, nothing recorded


def test_one_listener_for_several_limiters_and_keys(reader: InMemoryMetricReader) -> None:
    provider = MeterProvider(metric_readers=[reader])
    listener = MetricsListener(meter_provider=provider, key_attribute=True)
    users = PerUserLimiter(BucketConfig(1, 1), clock=FakeClock())
    users.name = "per-user"
    unnamed = SyncLeakyBucket(BucketConfig(1, 1), clock=FakeClock())
    users.add_listener(listener)
    unnamed.add_listener(listener)
    users.try_acquire("alice")
    users.try_acquire("alice")
    users.try_acquire("bob")
    unnamed.try_acquire()
    admitted = {
        tuple(sorted(point.attributes.items())): point.value
        for point in points(reader)["limitor.admitted"]
    }
    assert admitted == {
        (("limitor.key", "alice"), ("limitor.limiter", "per-user")): 1,
        (("limitor.key", "bob"), ("limitor.limiter", "per-user")): 1,
        (("limitor.limiter", "unnamed"),): 1,
    }
    (rejected,) = points(reader)["limitor.rejected"]
    assert rejected.value == 1
    assert dict(rejected.attributes) == {"limitor.limiter": "per-user", "limitor.key": "alice"}


def test_backend_errors_are_counted(reader: InMemoryMetricReader) -> None:
    from limitor.listeners import LimitEvent

    listener = MetricsListener(meter_provider=MeterProvider(metric_readers=[reader]))
    listener.on_backend_error(LimitEvent("shared", None, 1.0, error=ConnectionError("down")))
    (errors,) = points(reader)["limitor.backend_errors"]
    assert errors.value == 1
