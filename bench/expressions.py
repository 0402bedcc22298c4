"""How many expressions per second the expression language evaluates.

    .venv/bin/python -m bench.expressions [--seconds 2] [--repeats 5]

Each case is timed `--repeats` times for about `--seconds` each, in this
process, and the median rate is printed as a Markdown table for
bench/RESULTS.md. The event is a realistic `order_completed` with three items.
The interpreter runs on one core, so the rates are per core.

- "evaluate" times `evaluate` alone, on an expression parsed beforehand, which
  is how transformations and routing rules run: their expressions are parsed
  once per document.
- "parse" times the parser alone (the cache bypassed), which is what saving a
  document or a cache miss costs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from signal_admin.processing.expressions import evaluate, parse
from signal_admin.processing.expressions.parser import parse_text

EVENT: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "anonymousId": "a5f1c0de-6c1e-4f7b-9a57-0c6f2b1d9e21",
    "userId": "user-4711",
    "messageId": "msg-0001",
    "timestamp": "2026-02-25T14:30:00.123Z",
    "properties": {
        "order_id": "ORD-10042",
        "revenue": 129.9,
        "tax": 20.74,
        "shipping": 4.95,
        "currency": "eur",
        "coupon": None,
        "items": [
            {"sku": "SKU-1", "name": "Trail shoe", "price": 89.9, "quantity": 1},
            {"sku": "SKU-2", "name": "Socks", "price": 9.99, "quantity": 2},
            {"sku": "SKU-3", "name": "Laces", "price": 3.99, "quantity": 1},
        ],
    },
    "context": {
        "page": {"url": "https://shop.example/checkout/thanks", "title": "Thanks"},
        "locale": "de-DE",
        "ip": "203.0.113.7",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
        "consent": {"analytics": True, "marketing": False},
    },
}

CASES = {
    "filter": "event.event = 'Order Completed' AND event.properties.revenue >= 100",
    "routing rule": "event.context.page.url CONTAINS '/staging' "
    "OR event.event IN ('Internal Test', 'QA Ping')",
    "compute": "ROUND((event.properties.revenue - event.properties.tax) * 1.19, 2)",
    "text functions": "UPPER(COALESCE(event.properties.currency, 'EUR')) "
    "|| '-' || SUBSTRING(event.properties.order_id, 5, 5)",
    "like on a path in a list": "LOWER(event.properties.items[1].name) LIKE '%sock%'",
    "hash": "SHA256(LOWER(TRIM(event.userId)))",
}


def rate(call: Callable[[], object], seconds: float) -> float:
    """Calls per second of `call`, run in batches for about `seconds`."""
    batch = 1
    while True:
        started = time.perf_counter()
        for _ in range(batch):
            call()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return batch / elapsed
        batch *= 2


def median_rate(call: Callable[[], object], seconds: float, repeats: int) -> float:
    return statistics.median(rate(call, seconds) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    print(f"Python {platform.python_version()} on {platform.machine()}, one core")
    print()
    print("| expression | evaluate /s | parse /s |")
    print("| --- | ---: | ---: |")
    for name, text in CASES.items():
        expression = parse(text)
        evaluations = median_rate(
            partial(evaluate, expression, EVENT), args.seconds, args.repeats
        )
        parses = median_rate(partial(parse_text, text), args.seconds, args.repeats)
        print(f"| {name} | {evaluations:,.0f} | {parses:,.0f} |")


if __name__ == "__main__":
    main()
