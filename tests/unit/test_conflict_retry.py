"""Operations marked `retried_on_conflict` start over after a clash, a bounded
number of times."""

import pytest

from signal_admin.errors import TransactionConflict
from signal_admin.persistence.database import CONFLICT_ATTEMPTS, retried_on_conflict


async def test_an_operation_that_clashes_once_succeeds_on_its_next_run() -> None:
    runs = []

    @retried_on_conflict
    async def operation() -> str:
        runs.append(len(runs) + 1)
        if len(runs) == 1:
            raise TransactionConflict()
        return "done"

    assert await operation() == "done"
    assert runs == [1, 2]


async def test_an_operation_that_keeps_clashing_fails_after_the_last_attempt() -> None:
    runs = []

    @retried_on_conflict
    async def operation() -> None:
        runs.append(len(runs) + 1)
        raise TransactionConflict()

    with pytest.raises(TransactionConflict) as raised:
        await operation()
    assert len(runs) == CONFLICT_ATTEMPTS == 3
    assert raised.value.status == 503
    assert raised.value.retry_after == 1


async def test_other_errors_are_not_run_again() -> None:
    runs = []

    @retried_on_conflict
    async def operation() -> None:
        runs.append(len(runs) + 1)
        raise ValueError("not a clash")

    with pytest.raises(ValueError, match="not a clash"):
        await operation()
    assert runs == [1]
