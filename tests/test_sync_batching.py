"""How the engine hands a connector's pages to the writer: read ahead, pages already waiting
joined into one write (up to a batch), every record once and in order, the cursor of the
last page read, and a read failure only after the pages read before it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from pane.connectors.records import LeadRecord, Page, RecordFailure, Stream
from pane.sync.engine import _prefetched, _ReadFailed


def _page(number: int, size: int = 500) -> Page:
    return Page(
        stream=Stream.LEADS,
        records=[LeadRecord(external_id=f"L{number}-{index}", raw={}) for index in range(size - 1)],
        failures=[RecordFailure(raw={"page": number}, reason="no id")],
        cursor=f"after-{number}",
    )


async def _vendor(
    count: int, *, pause: float = 0.0, fail_after: int | None = None
) -> AsyncIterator[Page]:
    for number in range(count):
        if fail_after is not None and number == fail_after:
            raise ValueError("the vendor answered 502")
        if pause:
            await asyncio.sleep(pause)
        yield _page(number)


def _ids(pages: list[Page]) -> list[str]:
    return [record.external_id for page in pages for record in page.records]


async def test_waiting_pages_are_joined_up_to_the_batch_with_nothing_lost() -> None:
    handed: list[Page] = []
    async with contextlib.aclosing(_prefetched(_vendor(10), depth=8, batch=2_000)) as read:
        async for page in read:
            handed.append(page)
            await asyncio.sleep(0.05)  # a slow database: the reader fills the queue meanwhile
    assert _ids(handed) == _ids([_page(number) for number in range(10)])
    assert sum(len(page.failures) for page in handed) == 10
    sizes = [len(page.records) + len(page.failures) for page in handed]
    assert max(sizes) == 2_000  # four pages of 500 in one write
    assert all(size <= 2_000 for size in sizes)
    assert len(handed) < 10
    assert handed[-1].cursor == "after-9"
    # each write resumes where its own last page does
    last_numbers = [int(page.records[-1].external_id.split("-")[0][1:]) for page in handed]
    assert [page.cursor for page in handed] == [f"after-{n}" for n in last_numbers]


async def test_a_slow_vendors_pages_are_written_each_as_it_comes() -> None:
    handed: list[Page] = []
    async with contextlib.aclosing(
        _prefetched(_vendor(4, pause=0.05), depth=8, batch=2_000)
    ) as read:
        async for page in read:
            handed.append(page)
    assert [page.cursor for page in handed] == ["after-0", "after-1", "after-2", "after-3"]


async def test_pages_read_before_a_failure_are_handed_over_before_it() -> None:
    handed: list[Page] = []

    async def write_all() -> None:
        async with contextlib.aclosing(
            _prefetched(_vendor(6, fail_after=5), depth=8, batch=2_000)
        ) as read:
            async for page in read:
                handed.append(page)
                await asyncio.sleep(0.05)

    with pytest.raises(_ReadFailed) as failed:
        await write_all()
    assert "502" in str(failed.value.cause)
    assert _ids(handed) == _ids([_page(number) for number in range(5)])


async def test_stopping_the_writer_stops_the_reading() -> None:
    reads = 0

    async def endless() -> AsyncIterator[Page]:
        nonlocal reads
        while True:
            reads += 1
            yield _page(reads)
            await asyncio.sleep(0)

    async with contextlib.aclosing(_prefetched(endless(), depth=2, batch=500)) as read:
        async for _ in read:
            break
    seen = reads
    await asyncio.sleep(0.05)
    assert reads == seen
