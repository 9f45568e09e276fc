"""Two pages written at once (``write_in_turn``): each page's rows go in while the page before
it commits, but pages commit in the order they were read, a page after a failed one never
commits, a read failure lets what was read before it land, and pages that share leads are
written one after the other, ending with the later page's values and events in page order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from pane.connectors.records import LeadRecord, Page, Stream
from pane.db.database import workspace_scope
from pane.demo.simulator import Simulator
from pane.sync.engine import PAGES_IN_FLIGHT, SyncDeps, pages_overlap, write_in_turn
from pane.sync.targets import TARGETS
from pane.sync.upsert import Turn, write_page
from tests.loopback import Loopback


async def _pages(count: int, *, fail_after: int | None = None) -> AsyncIterator[int]:
    for number in range(count):
        if number == fail_after:
            raise ValueError("the vendor answered 502")
        yield number


def _apart(earlier: int, later: int) -> bool:
    return False


class _Writer:
    """Stands in for a page's transaction: ``heavy[page]`` seconds of row writing, then its
    turn, then the commit (recorded)."""

    def __init__(self, heavy: dict[int, float], failing: int | None = None) -> None:
        self.heavy = heavy
        self.failing = failing
        self.started: list[int] = []
        self.running: set[int] = set()
        self.alongside: dict[int, set[int]] = {}  # what was being written when each started
        self.committed: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, page: int, turn: Turn) -> None:
        self.started.append(page)
        self.alongside[page] = set(self.running)
        self.running.add(page)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.heavy.get(page, 0.0))
            if page == self.failing:
                raise RuntimeError(f"the database refused page {page}")
            await turn()
            self.committed.append(page)
        finally:
            self.running.discard(page)
            self.in_flight -= 1


async def test_pages_commit_in_the_order_read_however_long_each_takes() -> None:
    writer = _Writer({0: 0.08, 1: 0.0, 2: 0.05, 3: 0.0, 4: 0.03, 5: 0.01})
    await write_in_turn(_pages(6), writer, overlap=_apart)
    assert writer.committed == [0, 1, 2, 3, 4, 5]
    assert writer.most_in_flight == PAGES_IN_FLIGHT == 2


async def test_a_page_after_a_failed_one_does_not_commit_and_the_failure_is_raised() -> None:
    # page 2 is fast and reaches its turn while page 1, slower, is failing
    writer = _Writer({1: 0.05, 2: 0.0}, failing=1)
    with pytest.raises(RuntimeError, match="refused page 1"):
        await write_in_turn(_pages(5), writer, overlap=_apart)
    assert writer.started == [0, 1, 2]  # page 2 was being written when page 1 failed
    assert writer.committed == [0]
    assert writer.in_flight == 0  # nothing is left running


async def test_a_read_failure_lets_the_pages_read_before_it_commit() -> None:
    writer = _Writer({0: 0.02, 1: 0.05, 2: 0.03})
    with pytest.raises(ValueError, match="502"):
        await write_in_turn(_pages(5, fail_after=3), writer, overlap=_apart)
    assert writer.committed == [0, 1, 2]


async def test_cancelling_the_write_leaves_nothing_running_or_committing() -> None:
    writer = _Writer(dict.fromkeys(range(4), 0.2))
    task = asyncio.create_task(write_in_turn(_pages(4), writer, overlap=_apart))
    await asyncio.sleep(0.05)
    assert writer.in_flight == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert writer.in_flight == 0
    await asyncio.sleep(0.3)
    assert writer.committed == []


async def test_a_page_that_overlaps_one_in_flight_waits_for_it_to_commit() -> None:
    # odd pages share a row with the page before them
    writer = _Writer({0: 0.05, 1: 0.0, 2: 0.05, 3: 0.0})
    await write_in_turn(_pages(4), writer, overlap=lambda earlier, later: later % 2 == 1)
    assert writer.committed == [0, 1, 2, 3]
    assert writer.alongside == {0: set(), 1: set(), 2: {1}, 3: set()}


def _lead(external_id: str, company: str) -> LeadRecord:
    return LeadRecord(external_id=external_id, company=company, raw={"id": external_id})


async def _write_pages(
    sync_deps: SyncDeps, owner, link_id: uuid.UUID, vendor_id: uuid.UUID, pages: list[Page]
) -> None:
    async def read() -> AsyncIterator[Page]:
        for page in pages:
            yield page

    async def write(page: Page, turn: Turn) -> None:
        async with sync_deps.database.transaction(workspace_scope(owner.workspace_id)) as tx:
            await write_page(
                tx,
                target=TARGETS[Stream.LEADS],
                records=page.records,
                workspace_id=owner.workspace_id,
                vendor_id=vendor_id,
                vendor_name="Globex",
                link_id=link_id,
                run_id=uuid.uuid4(),
                remember_seen=False,
                turn=turn,
            )

    await asyncio.wait_for(write_in_turn(read(), write, overlap=pages_overlap), timeout=30)


async def test_pages_that_share_leads_end_with_the_later_values(
    api, loopback: Loopback, sync_deps: SyncDeps, admin_db
) -> None:
    owner = await api.signup()
    base = loopback.mount(Simulator(leads_per_vendor=1).app)
    link_id, vendor_id = await api.link_demo_vendor(owner, "globex", base)
    ids = [f"L{number:03}" for number in range(200)]
    pages = [
        Page(Stream.LEADS, [_lead(external_id, "First") for external_id in ids]),
        # the same leads in the opposite order, changed; then, alone, the last lead of the
        # first page, which a second page in flight would lock before the first page reached
        # it, and then wait for its turn while the first page waited for the lead
        Page(Stream.LEADS, [_lead(external_id, "Second") for external_id in reversed(ids)]),
        Page(Stream.LEADS, [_lead(f"L{number:03}", "Third") for number in range(200, 400)]),
        Page(Stream.LEADS, [_lead("L399", "Fourth")]),
    ]
    await _write_pages(sync_deps, owner, link_id, vendor_id, pages)
    companies = await admin_db.fetch(
        "SELECT company, count(*) FROM leads WHERE workspace_id = $1 GROUP BY company"
        " ORDER BY company",
        owner.workspace_id,
    )
    assert [(row["company"], row["count"]) for row in companies] == [
        ("Fourth", 1),
        ("Second", 200),
        ("Third", 199),
    ]
    events = await admin_db.fetch(
        "SELECT seq, type, document->'data'->'changed'->'company' AS company FROM events"
        " WHERE workspace_id = $1 AND type LIKE 'lead.%' ORDER BY seq",
        owner.workspace_id,
    )
    types = [row["type"] for row in events]
    assert types == ["lead.created"] * 200 + ["lead.updated"] * 200 + ["lead.created"] * 200 + [
        "lead.updated"
    ]
    assert {row["company"] for row in events[200:400]} == {'["First", "Second"]'}
    assert events[-1]["company"] == '["Third", "Fourth"]'
    assert [row["seq"] for row in events] == list(range(events[0]["seq"], events[0]["seq"] + 601))


def test_pages_overlap_when_they_share_a_record_or_are_price_lists() -> None:
    first = Page(Stream.LEADS, [_lead("A", "x"), _lead("B", "x")])
    assert pages_overlap(first, Page(Stream.LEADS, [_lead("B", "y")]))
    assert not pages_overlap(first, Page(Stream.LEADS, [_lead("C", "y")]))
    assert pages_overlap(Page(Stream.PRICE_LISTS), Page(Stream.PRICE_LISTS))
