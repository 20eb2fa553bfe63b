"""Group commit: concurrent callers share one run; results and errors reach the right caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from core.storage.group_commit import GroupCommit


async def test_concurrent_submissions_share_one_run_and_get_their_own_results() -> None:
    batches: list[list[int]] = []

    async def run(items: Sequence[int]) -> list[int | Exception]:
        batches.append(list(items))
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    group = GroupCommit(run, parallel=1)
    results = await asyncio.gather(*(group.submit(i) for i in range(20)))
    assert results == [i * 10 for i in range(20)]
    assert batches[0] == list(range(20))  # one turn of the loop gathered all of them


async def test_a_lone_caller_waits_for_no_one() -> None:
    async def run(items: Sequence[int]) -> list[int | Exception]:
        return list(items)

    group = GroupCommit(run)
    assert await asyncio.wait_for(group.submit(7), 0.5) == 7


async def test_while_batches_run_new_arrivals_wait_for_the_next_batch() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def run(items: Sequence[int]) -> list[int | Exception]:
        batches.append(list(items))
        await gate.wait()
        return list(items)

    group = GroupCommit(run, parallel=1)
    first = asyncio.ensure_future(group.submit(0))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(group.submit(i)) for i in range(1, 5)]
    await asyncio.sleep(0.01)
    gate.set()
    assert await asyncio.gather(first, *rest) == [0, 1, 2, 3, 4]
    assert batches == [[0], [1, 2, 3, 4]]


async def test_an_item_error_fails_only_its_caller() -> None:
    async def run(items: Sequence[int]) -> list[int | Exception]:
        return [ValueError(i) if i == 2 else i for i in items]

    group = GroupCommit(run)
    results = await asyncio.gather(*(group.submit(i) for i in range(4)), return_exceptions=True)
    assert results[:2] == [0, 1] and isinstance(results[2], ValueError) and results[3] == 3


async def test_a_failed_run_fails_every_caller_of_that_batch_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def run(items: Sequence[int]) -> list[int | Exception]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database down")
        return list(items)

    group = GroupCommit(run)
    failed = await asyncio.gather(*(group.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in failed)
    assert await group.submit(9) == 9


async def test_batches_are_capped_at_max_batch() -> None:
    sizes: list[int] = []

    async def run(items: Sequence[int]) -> list[int | Exception]:
        sizes.append(len(items))
        return list(items)

    group = GroupCommit(run, parallel=8, max_batch=4)
    await asyncio.gather(*(group.submit(i) for i in range(10)))
    assert sizes == [4, 4, 2]


@pytest.mark.parametrize("parallel", [1, 3])
async def test_a_cancelled_caller_does_not_break_the_batch(parallel: int) -> None:
    gate = asyncio.Event()

    async def run(items: Sequence[int]) -> list[int | Exception]:
        await gate.wait()
        return list(items)

    group = GroupCommit(run, parallel=parallel)
    doomed = asyncio.ensure_future(group.submit(1))
    kept = asyncio.ensure_future(group.submit(2))
    await asyncio.sleep(0.01)
    doomed.cancel()
    gate.set()
    assert await kept == 2
