"""`signal-admin re-encrypt` as an operator runs it after a key rotation: every
organisation's secrets move under the new key, and the command says whether
the previous key can go."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import select

from signal_admin.persistence.models import AuditEntry, Secret
from signal_admin.security.crypto import Cipher
from tests.e2e.test_cli import DATABASE_FILE, CommandLine, assert_failed_in_one_line
from tests.factories import Factory
from tests.helpers import client_of, dedicated_app

OLD_KEY = secrets.token_hex(32)
NEW_KEY = secrets.token_hex(32)


async def _organisations_with_secrets(url: str, count: int) -> list[str]:
    """`count` organisations, each with two pipelines whose key secrets are
    sealed by the old key."""
    org_ids = []
    async with (
        dedicated_app(url, None, encryption_key=OLD_KEY) as app,
        client_of(app) as http,
    ):
        factory = Factory(app, http)
        for _ in range(count):
            org = await factory.org()
            await factory.pipeline(org.owner)
            await factory.pipeline(org.owner)
            org_ids.append(org.id)
    return org_ids


async def _stored(url: str) -> tuple[list[Secret], list[AuditEntry]]:
    async with (
        dedicated_app(url, None, encryption_key=NEW_KEY) as app,
        app.state.services.db.read() as session,
    ):
        stored = list(await session.scalars(select(Secret)))
        entries = list(
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "crypto.re_encrypt_started"
                )
            )
        )
    return stored, entries


def _migrated(tmp_path: Path) -> tuple[CommandLine, str]:
    cli = CommandLine(tmp_path)
    migrated = cli.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    return cli, f"sqlite+aiosqlite:///{tmp_path / DATABASE_FILE}"


async def test_re_encrypt_moves_every_organisation_under_the_new_key(
    tmp_path: Path,
) -> None:
    cli, url = _migrated(tmp_path)
    org_ids = await _organisations_with_secrets(url, count=2)

    result = cli.run(
        "re-encrypt", ENCRYPTION_KEY=NEW_KEY, ENCRYPTION_KEY_PREVIOUS=OLD_KEY
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert sorted(lines[:-1]) == sorted(
        f"{org_id}  completed  2 of 2 re-encrypted" for org_id in org_ids
    )
    assert lines[-1] == (
        "every stored value is under ENCRYPTION_KEY: "
        "ENCRYPTION_KEY_PREVIOUS can be removed"
    )
    stored, entries = await _stored(url)
    cipher = Cipher(NEW_KEY)
    assert len(stored) == 4
    assert {row.key_id for row in stored} == {cipher.current_key_id}
    assert all(cipher.decrypt(row.ciphertext, row.id) for row in stored)
    assert sorted(entry.org_id for entry in entries) == sorted(org_ids)
    assert all(entry.user_id is None for entry in entries)
    assert all("command line" in (entry.user_agent or "") for entry in entries)


async def test_re_encrypt_with_nothing_to_do_says_so(tmp_path: Path) -> None:
    cli, url = _migrated(tmp_path)
    await _organisations_with_secrets(url, count=1)

    result = cli.run("re-encrypt", ENCRYPTION_KEY=OLD_KEY)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        "every stored value is under ENCRYPTION_KEY: "
        "ENCRYPTION_KEY_PREVIOUS can be removed"
    ]


async def test_re_encrypt_without_the_previous_key_fails_and_keeps_the_values(
    tmp_path: Path,
) -> None:
    cli, url = _migrated(tmp_path)
    [org_id] = await _organisations_with_secrets(url, count=1)

    # Only warnings are logged, so that stderr holds the command's answer alone.
    result = cli.run("re-encrypt", ENCRYPTION_KEY=NEW_KEY, LOG_LEVEL="warning")

    reason = assert_failed_in_one_line(result)
    assert "2 stored value(s) are still not under ENCRYPTION_KEY" in reason
    assert result.stdout.startswith(
        f"{org_id}  failed  0 of 2 re-encrypted, 2 unreadable"
    )
    stored, _ = await _stored(url)
    assert {row.key_id for row in stored} == {Cipher(OLD_KEY).current_key_id}
