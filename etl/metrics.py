"""Prometheus metrics of the daemon (`daemon --metrics-port P`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

REGISTRY = CollectorRegistry()
_LABELS = ("source", "account_id")

LAST_SUCCESS = Gauge(
    "numbers_etl_last_success_timestamp_seconds",
    "Unix time of the last successful load of a source and account.",
    _LABELS,
    registry=REGISTRY,
)
ACTIVE_NUMBERS = Gauge(
    "numbers_etl_active_numbers",
    "Numbers not removed, per source and account, after the last run.",
    _LABELS,
    registry=REGISTRY,
)
REJECTED_RECORDS = Gauge(
    "numbers_etl_rejected_records",
    "Records rejected by the last run of a source and account.",
    _LABELS,
    registry=REGISTRY,
)
RUN_DURATION = Gauge(
    "numbers_etl_run_duration_seconds",
    "Duration of the last run of a source and account.",
    _LABELS,
    registry=REGISTRY,
)
FAILURES = Counter(
    "numbers_etl_failures_total",
    "Failed loads of a source and account since the daemon started.",
    _LABELS,
    registry=REGISTRY,
)
RUNS = Counter(
    "numbers_etl_runs_total",
    "Runs since the daemon started, by status.",
    ("status",),
    registry=REGISTRY,
)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on host:port in a background thread."""
    start_http_server(port, addr=host, registry=REGISTRY)
