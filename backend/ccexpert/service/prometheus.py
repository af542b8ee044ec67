"""Prometheus metrics of one app instance (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("ccexpert_requests", "HTTP requests", ["route", "status"], registry=r)
        self.latency = Histogram(
            "ccexpert_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.pairs = Counter("ccexpert_pairs", "chip pairs answered", ["status"], registry=r)
        self.errors = Counter("ccexpert_errors", "error responses by code", ["code"], registry=r)
        self.batch_size = Histogram(
            "ccexpert_batch_size", "pairs per device batch", registry=r, buckets=(1, 2, 4, 8, 16, 32, 64, 128)
        )
        self.batch_seconds = Histogram(
            "ccexpert_batch_seconds",
            "engine time per device batch",
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.queue = Gauge("ccexpert_queue_pairs", "pairs waiting for the device", registry=r)
        self.inflight = Gauge("ccexpert_inflight_requests", "caption requests being served", registry=r)
        self.ready = Gauge("ccexpert_ready", "1 when the model is loaded and warmed", registry=r)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
