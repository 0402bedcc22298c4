"""The `signal-admin` command as an operator runs it: a separate process that
reads its settings from the environment, each test on its own SQLite file and
data directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from signal_admin.config import Settings

DATABASE_FILE = "signal-admin.db"
PREFIXED_ULID = re.compile(r"^(?P<prefix>[a-z]+)_[0-9A-HJKMNP-TV-Z]{26}$")
# Settings are read case-insensitively, so a stray variable in any case counts.
SETTING_NAMES = {name.upper() for name in Settings.model_fields}


class CommandLine:
    """Runs `signal-admin` against the database and data directory in one
    folder, with no other settings leaking in from the test's environment."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {
            name: value
            for name, value in os.environ.items()
            if name.upper() not in SETTING_NAMES
        }
        self.env["DATABASE_URL"] = f"sqlite+aiosqlite:///{folder / DATABASE_FILE}"
        self.env["SIGNAL_DATA_DIR"] = str(folder / "data")

    def run(self, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "signal_admin.cli", *args],
            cwd=self.folder,
            env={**self.env, **settings},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def create_org(self, email: str, *args: str) -> dict[str, str | None]:
        result = self.run(
            "create-org", "--name", "Acme", "--owner-email", email, "--json", *args
        )
        assert result.returncode == 0, result.stderr
        document: dict[str, str | None] = json.loads(result.stdout)
        return document


def assert_failed_in_one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def prefix_of(identifier: str | None) -> str | None:
    match = PREFIXED_ULID.match(identifier or "")
    return match["prefix"] if match else None


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database at head, migrated once and copied for each test that needs one."""
    folder = tmp_path_factory.mktemp("migrated")
    result = CommandLine(folder).run("migrate")
    assert result.returncode == 0, result.stderr
    return folder / DATABASE_FILE


@pytest.fixture
def cli(tmp_path: Path) -> CommandLine:
    return CommandLine(tmp_path)


@pytest.fixture
def migrated_cli(tmp_path: Path, migrated_database: Path) -> CommandLine:
    for suffix in ("", "-wal", "-shm"):
        source = migrated_database.with_name(migrated_database.name + suffix)
        if source.exists():
            shutil.copy(source, tmp_path / source.name)
    return CommandLine(tmp_path)


def test_migrate_brings_a_new_database_to_head(cli: CommandLine) -> None:
    first = cli.run("migrate")
    again = cli.run("migrate")

    assert first.returncode == 0, first.stderr
    assert "(head)" in first.stdout
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout


def test_create_org_json_names_the_organisation_and_its_owner(
    migrated_cli: CommandLine,
) -> None:
    created = migrated_cli.create_org("Owner@Example.com")

    assert set(created) == {"org_id", "owner_id", "owner_email", "owner_password"}
    assert prefix_of(created["org_id"]) == "org"
    assert prefix_of(created["owner_id"]) == "usr"
    assert created["owner_email"] == "owner@example.com"
    assert isinstance(created["owner_password"], str)
    assert len(created["owner_password"]) >= 12


def test_create_org_json_has_no_password_when_one_is_given(
    migrated_cli: CommandLine,
) -> None:
    created = migrated_cli.create_org(
        "owner@example.com", "--owner-password", "a long enough password"
    )

    assert created["owner_password"] is None


def test_create_org_refuses_an_email_already_taken(
    migrated_cli: CommandLine,
) -> None:
    migrated_cli.create_org("owner@example.com")

    again = migrated_cli.run(
        "create-org", "--name", "Other", "--owner-email", "owner@example.com"
    )

    reason = assert_failed_in_one_line(again)
    assert "already exists" in reason
    assert again.stdout == ""


def test_create_user_adds_a_viewer(migrated_cli: CommandLine) -> None:
    org_id = migrated_cli.create_org("owner@example.com")["org_id"]
    assert org_id is not None

    result = migrated_cli.run(
        "create-user",
        "--org",
        org_id,
        "--email",
        "viewer@example.com",
        "--role",
        "viewer",
        "--json",
    )

    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert prefix_of(created["user_id"]) == "usr"
    assert created["org_id"] == org_id
    assert created["email"] == "viewer@example.com"
    assert created["role"] == "viewer"
    assert isinstance(created["password"], str)


def test_create_user_refuses_a_second_owner(migrated_cli: CommandLine) -> None:
    org_id = migrated_cli.create_org("owner@example.com")["org_id"]
    assert org_id is not None

    result = migrated_cli.run(
        "create-user", "--org", org_id, "--email", "b@example.com", "--role", "owner"
    )

    assert "exactly one owner" in assert_failed_in_one_line(result)


def test_create_user_refuses_an_unknown_organisation(
    migrated_cli: CommandLine,
) -> None:
    result = migrated_cli.run(
        "create-user",
        "--org",
        "org_01J00000000000000000000000",
        "--email",
        "viewer@example.com",
        "--role",
        "viewer",
    )

    assert "was not found" in assert_failed_in_one_line(result)


def test_serve_refuses_a_database_behind_the_migrations(cli: CommandLine) -> None:
    result = cli.run("serve", "--port", "0")

    assert result.returncode == 1
    assert assert_failed_in_one_line(result).endswith(
        "the database schema is out of date; run `signal-admin migrate`"
    )


def test_serve_refuses_several_workers_on_sqlite(cli: CommandLine) -> None:
    result = cli.run("serve", "--port", "0", "--workers", "2")

    reason = assert_failed_in_one_line(result)
    assert "--workers" in reason
    assert "SQLite" in reason
    assert "rate limiter" in reason


def test_production_without_secrets_names_both_missing_keys(
    cli: CommandLine,
) -> None:
    result = cli.run("migrate", SIGNAL_ENV="production")

    reason = assert_failed_in_one_line(result)
    assert "JWT_SECRET" in reason
    assert "ENCRYPTION_KEY" in reason


def test_an_unreachable_database_is_reported_in_one_line(cli: CommandLine) -> None:
    result = cli.run(
        "migrate", DATABASE_URL="postgresql+asyncpg://postgres:pw@127.0.0.1:1/none"
    )

    reason = assert_failed_in_one_line(result)
    assert "cannot use the database" in reason
    assert ":pw@" not in reason


def test_seed_demo_prints_the_password_only_the_first_time(
    migrated_cli: CommandLine,
) -> None:
    first = migrated_cli.run("seed-demo")
    second = migrated_cli.run("seed-demo")

    assert first.returncode == 0, first.stderr
    assert "demo@example.com" in first.stdout
    password = re.search(r"password\s+(\S+)", first.stdout)
    assert password is not None
    assert second.returncode == 0, second.stderr
    assert password[1] not in second.stdout + second.stderr
    assert len(second.stdout.strip().splitlines()) == 1
