"""Command-line options every benchmark that starts the service shares: the
PostgreSQL server it may create its database on, that database, and the
Redis database it may flush."""

from __future__ import annotations

import argparse
import os

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def add_service_options(
    parser: argparse.ArgumentParser,
    *,
    database: str,
    redis_env: str,
    redis_url: str,
) -> None:
    """Add `--admin-dsn`, `--database` (default `database`) and `--redis-url`
    (default the `redis_env` variable, else `redis_url`)."""
    parser.add_argument(
        "--admin-dsn",
        default=os.environ.get("BENCH_ADMIN_DSN", DEFAULT_ADMIN_DSN),
        help="a PostgreSQL connection allowed to create databases",
    )
    parser.add_argument(
        "--database", default=database, help="dropped and created afresh"
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get(redis_env, redis_url),
        help="a Redis database the run may flush",
    )
