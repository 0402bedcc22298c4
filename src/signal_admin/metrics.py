"""Prometheus metrics, served at `/metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "signal_admin_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "signal_admin_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status.",
    ["route", "method", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
RATE_LIMIT_REFUSALS = Counter(
    "signal_admin_rate_limit_refusals_total",
    "Requests refused with 429, by limit.",
    ["limit"],
    registry=REGISTRY,
)
RATE_LIMITER_FAILURES = Counter(
    "signal_admin_rate_limiter_failures_total",
    "Requests let through because the shared limiter store could not be reached.",
    registry=REGISTRY,
)
LIVE_SOCKETS = Gauge(
    "signal_admin_live_sockets",
    "Live WebSocket connections open on this replica, by protocol.",
    ["protocol"],
    registry=REGISTRY,
)
