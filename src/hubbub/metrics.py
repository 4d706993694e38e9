"""Prometheus metrics at ``/metrics``, on a registry owned by the app (no module globals).

Counters and histograms are updated where the work happens (generations; requests
in ``middleware.RequestMiddleware``); gauges that describe live state (active streams, the embedded
model's queue, channel errors, rate-limit refusals) are read at scrape time.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_TPS_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 400, 800, 1600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("hubbub_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.generations = Counter("hubbub_generations", "Generations by model and finish reason",
                                   ["model", "reason"], registry=self.registry)
        self.tokens = Counter("hubbub_generated_tokens", "Completion tokens generated", ["model"],
                              registry=self.registry)
        self.ttft = Histogram("hubbub_time_to_first_token_seconds", "Time to the first text delta", ["model"],
                              buckets=_TTFT_BUCKETS, registry=self.registry)
        self.tps = Histogram("hubbub_tokens_per_second", "Decoding speed of each generation", ["model"],
                             buckets=_TPS_BUCKETS, registry=self.registry)
        self.active_streams = 0
        # Labelled children, looked up once per label set (``labels()`` takes a lock and builds
        # a key on every call; these are counted on every request).
        self._children: dict[tuple[Any, ...], Any] = {}
        self._live: list[Callable[[], Iterable[Any]]] = []
        self.registry.register(_LiveCollector(self))

    def add_live(self, collect: Callable[[], Iterable[Any]]) -> None:
        """Register a function yielding metric families at scrape time."""
        self._live.append(collect)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def count_request(self, method: str, route: str, status: int) -> None:
        self._child(self.requests, method, route, str(status)).inc()

    def observe_generation(self, model: str, started: float, first_token: float | None, ended: float,
                           completion_tokens: int, reason: str | None) -> None:
        self._child(self.generations, model, reason or "unknown").inc()
        self._child(self.tokens, model).inc(completion_tokens)
        if first_token is not None:
            self._child(self.ttft, model).observe(first_token - started)
            if completion_tokens > 1 and ended > first_token:
                self._child(self.tps, model).observe((completion_tokens - 1) / (ended - first_token))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Any]:
        active = GaugeMetricFamily("hubbub_active_streams", "Generations streaming right now")
        active.add_metric([], self._metrics.active_streams)
        yield active
        for collect in self._metrics._live:
            yield from collect()


def counter(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family


def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc)
    family.add_metric([], value)
    return family


def now() -> float:
    return time.monotonic()
