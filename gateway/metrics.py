"""Prometheus metrics (``GET /metrics``), one registry per gateway instance."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.delivery.breaker import STATE_VALUES


class _QueueDepth(Collector):
    """Deliveries by status, read from the store at scrape time."""

    def __init__(self, depth: Callable[[], dict[str, int]]) -> None:
        self._depth = depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("saisine_queue_depth", "Deliveries by status", labels=["status"])
        try:
            counts = self._depth()
        except Exception:  # a scrape must not fail because the store is briefly away
            counts = {}
        for status in ("pending", "held", "registered", "dead_letter"):
            family.add_metric([status], counts.get(status, 0))
        yield family


class Metrics:
    def __init__(self, queue_depth: Callable[[], dict[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "saisine_messages_received", "Messages received", ["agency", "transport"], registry=r
        )
        self.accepted = Counter("saisine_messages_accepted", "Messages accepted", ["agency"], registry=r)
        self.rejected = Counter(
            "saisine_messages_rejected", "Messages rejected, by error code", ["agency", "code"], registry=r
        )
        self.deliveries = Counter(
            "saisine_deliveries", "Delivery attempts by outcome", ["outcome"], registry=r
        )
        self.retries = Counter(
            "saisine_delivery_retries", "Deliveries scheduled for another attempt", registry=r
        )
        self.dead_letters = Counter(
            "saisine_dead_letters", "Deliveries given up, by reason code", ["code"], registry=r
        )
        self.latency = Histogram(
            "saisine_delivery_seconds",
            "Duration of one call to the court registry",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.circuit = Gauge(
            "saisine_circuit_state", "0 closed, 1 half-open, 2 open", ["endpoint"], registry=r
        )
        if queue_depth is not None:
            r.register(_QueueDepth(queue_depth))

    # IntakeObserver
    def message(self, agency: str, transport: str, accepted: bool, codes: list[str]) -> None:
        self.received.labels(agency, transport).inc()
        if accepted:
            self.accepted.labels(agency).inc()
        for code in codes:
            self.rejected.labels(agency, code).inc()

    # DeliveryObserver
    def delivered(self, outcome: str, seconds: float) -> None:
        self.deliveries.labels(outcome).inc()
        self.latency.observe(seconds)
        if outcome == "retriable":
            self.retries.inc()

    def dead_letter(self, code: str) -> None:
        self.dead_letters.labels(code).inc()

    def circuit_changed(self, endpoint: str, state: str) -> None:
        self.circuit.labels(endpoint).set(STATE_VALUES[state])

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
