"""Benchmark: the change feed read in pages, and the live stream while a sync writes.

    python -m bench.changes [--events 1000000] [--clients 500] [--leads 10000] [--rounds 2]

1. **Feed**: N events of one workspace (appended once by pane's event writer and kept, in the
   database ``pane_bench_changes``), read from the start through
   ``GET /v1/changes?after=…&limit=500`` (one uvicorn worker, an owner's access token, one
   keep-alive connection, each page's items counted and its ``next_after`` read) against a
   bare asyncpg keyset read of the same rows, every column but the workspace's (the owner's
   connection, no RLS, a prepared statement, pages of 500) in the same run, alternated, best
   of ``--rounds``. Prints events/s of each and pane/bare (target >= 0.6).
2. **Stream**: C clients hold ``GET /v1/changes/stream`` open on a fresh workspace while pane's
   sync (``bench.sync``'s child process, waking streams after each commit as the worker does)
   writes L leads from the simulated Globex into it. Delivery latency runs from the commit's
   wake-up on Redis (this process subscribes to the channel the API process listens on; pane
   publishes right after each commit) to the moment a client has read the event: p50, p99 and
   max over every (client, event). Every client must get every event once and in order. RSS
   per client: the server's VmRSS with the clients connected, less before, over C.

Servers: PANE_BENCH_DATABASE_URL (a superuser URL) and PANE_BENCH_REDIS_URL, else embedded
ones under ~/.cache/pane-bench.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from bench.api import server
from bench.servers import bench_servers, database_url, free_port, fresh_database, server_user
from bench.sync import new_link, run_pane, simulator
from pane.db.migrate import upgrade
from pane.services.events import events_from, fresh_ids
from pane.services.hub import CHANNEL
from pane.services.security import AccessTokens, hash_password

DATABASE = "pane_bench_changes"
PAGE = 500
SIGNING_KEY = b"bench-signing-key-0123456789abcdef0123456789"
FEED_WORKSPACE = uuid.UUID("00000000-0000-7000-8000-00000000feed")
BARE_READ = """
SELECT seq, id, type, entity_id, vendor_id, actor_type, actor_id, created_at, document
FROM events WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
"""
SEED_BATCH = 50_000
SEED_EVENTS = """
WITH changes AS (
  SELECT 'lead.updated'::text AS type, gen_random_uuid() AS entity_id, $2::uuid AS vendor_id,
         'connector'::text AS actor_type, $3::uuid AS actor_id,
         jsonb_build_object(
           'external_id', 'GLX-' || lpad(g::text, 7, '0'),
           'run_id', $3::text,
           'changed', jsonb_build_object(
             'score', jsonb_build_array(g % 100, (g + 7) % 100),
             'vendor_status', jsonb_build_array('New', 'Working')),
           'version', 2) AS data
  FROM generate_series($4::int, $5::int) g
)""" + events_from("changes", ids="$6")
CONTENT_LENGTH = re.compile(rb"^content-length: (\d+)\r$", re.MULTILINE | re.IGNORECASE)
FIRST_ID = re.compile(rb"^id: (\d+)\r$", re.MULTILINE)


# --- seeding --------------------------------------------------------------------------------


async def _database(admin_server: str) -> str:
    """The kept benchmark database (created and migrated if missing); its owner URL."""
    admin = await asyncpg.connect(
        database_url(admin_server, user=server_user(admin_server), database="postgres")
    )
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
    finally:
        await admin.close()
    if not exists:
        return await fresh_database(admin_server, DATABASE)
    owner_url = database_url(admin_server, user=server_user(admin_server), database=DATABASE)
    await upgrade(owner_url)
    return owner_url


async def add_owner(connection: asyncpg.Connection, workspace_id: uuid.UUID) -> uuid.UUID:
    user_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'Owner', $3)",
        user_id,
        f"owner-{user_id.hex[:12]}@bench.example",
        hash_password("bench-password-123"),
    )
    await connection.execute(
        "INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, 'owner')",
        workspace_id,
        user_id,
    )
    return user_id


async def seed_feed(owner_url: str, events: int) -> uuid.UUID:
    """The feed workspace with ``events`` lead events (seeded once); its owner's user id."""
    connection = await asyncpg.connect(owner_url)
    try:
        count = await connection.fetchval(
            "SELECT event_seq FROM workspaces WHERE id = $1", FEED_WORKSPACE
        )
        if count != events:
            print(f"seeding {events:,} events (once; kept for later runs)...", flush=True)
            started = time.perf_counter()
            await connection.execute("DELETE FROM workspaces WHERE id = $1", FEED_WORKSPACE)
            vendor_id = uuid.uuid4()
            async with connection.transaction():
                await connection.execute(
                    "INSERT INTO vendors (id, slug, name, kind) VALUES ($1, $2, 'Feed Vendor',"
                    " 'vendor')",
                    vendor_id,
                    f"bench-feed-{vendor_id.hex[:8]}",
                )
                await connection.execute(
                    "INSERT INTO workspaces (id, name) VALUES ($1, 'Bench feed')", FEED_WORKSPACE
                )
                run_id = uuid.uuid4()
                # What a sync writes: lead.updated with the fields it changed, appended by
                # pane's one event writer, in batches.
                for first in range(1, events + 1, SEED_BATCH):
                    last = min(first + SEED_BATCH - 1, events)
                    await connection.fetch(
                        SEED_EVENTS,
                        FEED_WORKSPACE,
                        vendor_id,
                        run_id,
                        first,
                        last,
                        fresh_ids(last - first + 1),
                    )
            await connection.execute("VACUUM ANALYZE events")
            print(f"seeded in {time.perf_counter() - started:.0f}s", flush=True)
        user_id = await connection.fetchval(
            "SELECT user_id FROM memberships WHERE workspace_id = $1", FEED_WORKSPACE
        )
        return user_id or await add_owner(connection, FEED_WORKSPACE)
    finally:
        await connection.close()


# --- 1. the feed ----------------------------------------------------------------------------


async def read_through_pane(port: int, token: str) -> tuple[float, int]:
    """The feed from the start, one keep-alive HTTP/1.1 connection, as plain as a client can
    be (what is measured is pane, not an HTTP library): each answer's items are counted and
    its ``next_after`` and ``has_more`` read from its end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    read = 0
    after = 0
    try:
        started = time.perf_counter()
        while True:
            writer.write(
                f"GET /v1/changes?after={after}&limit={PAGE} HTTP/1.1\r\nHost: bench\r\n"
                f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"the feed answered {head[:200]!r}")
            length = CONTENT_LENGTH.search(head)
            if length is None:
                raise RuntimeError(f"the feed's answer has no length: {head[:300]!r}")
            body = await reader.readexactly(int(length.group(1)))
            read += body.count(b'{"seq":')
            end = orjson.loads(b"{" + body[body.rindex(b'"next_after":') :])
            after = end["next_after"]
            if not end["has_more"]:
                break
        return time.perf_counter() - started, read
    finally:
        writer.close()


async def read_bare(owner_url: str) -> tuple[float, int]:
    connection = await asyncpg.connect(owner_url)
    try:
        statement = await connection.prepare(BARE_READ)
        read = 0
        after = 0
        started = time.perf_counter()
        while True:
            rows = await statement.fetch(FEED_WORKSPACE, after, PAGE)
            read += len(rows)
            if len(rows) < PAGE:
                break
            after = rows[-1]["seq"]
        return time.perf_counter() - started, read
    finally:
        await connection.close()


# --- 2. the stream --------------------------------------------------------------------------


class StreamClient:
    """One SSE connection, read raw. A read holds whole events, numbered one after another
    when nothing is lost: only each read's first and last id are looked at (a parser here
    would compete with the server for the same cores), and a gap or a repeat between reads
    is counted."""

    def __init__(self) -> None:
        self.received: list[tuple[float, int, int]] = []  # (arrived, first id, last id)
        self.last = 0
        self.out_of_order = 0

    async def listen(self, port: int, token: str, connected: asyncio.Queue[None]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            request = (
                "GET /v1/changes/stream HTTP/1.1\r\nHost: bench\r\n"
                f"Accept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n"
            )
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"the stream answered {head[:200]!r}")
            connected.put_nowait(None)
            tail = b""
            while True:
                data = await reader.read(1 << 18)
                if not data:
                    return
                arrived = time.perf_counter()
                data = tail + data
                cut = data.rfind(b"\n") + 1
                complete, tail = data[:cut], data[cut:]
                first = FIRST_ID.search(complete)
                if first is None:
                    continue
                last = complete.rfind(b"id: ")  # orjson writes no blank after a colon
                last_id = int(complete[last + 4 : complete.index(b"\r", last + 4)])
                first_id = int(first.group(1))
                if first_id != self.last + 1:
                    self.out_of_order += 1
                self.received.append((arrived, first_id, last_id))
                self.last = last_id
        finally:
            writer.close()


async def watch_wakeups(
    redis_url: str, workspace_id: uuid.UUID, seen: list[tuple[int, float]]
) -> None:
    redis = Redis.from_url(redis_url)
    prefix = f"{workspace_id}:".encode()
    try:
        async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(CHANNEL)
            async for message in pubsub.listen():
                data = message.get("data")
                if isinstance(data, bytes) and data.startswith(prefix):
                    seen.append((int(data[len(prefix) :]), time.perf_counter()))
    finally:
        await redis.aclose()


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


async def stream_under_sync(
    urls: dict[str, str], port: int, server_pid: int, clients: int, leads: int, simulator_url: str
) -> dict[str, Any]:
    link = await new_link(urls["owner_url"], urls["key"], simulator_url, f"stream-{leads}")
    workspace_id = uuid.UUID(link["workspace_id"])
    owner = await asyncpg.connect(urls["owner_url"])
    try:
        user_id = await add_owner(owner, workspace_id)
    finally:
        await owner.close()
    token = AccessTokens(SIGNING_KEY, ttl_seconds=3600).issue(
        user_id=user_id, workspace_id=workspace_id, role="owner"
    )
    wakeups: list[tuple[int, float]] = []
    watcher = asyncio.create_task(watch_wakeups(urls["redis_url"], workspace_id, wakeups))
    await asyncio.sleep(0.5)
    rss_before = _rss_kb(server_pid)
    connected: asyncio.Queue[None] = asyncio.Queue()
    streams = [StreamClient() for _ in range(clients)]
    tasks = [asyncio.create_task(client.listen(port, token, connected)) for client in streams]
    for _ in range(clients):
        await asyncio.wait_for(connected.get(), 60)
    await asyncio.sleep(1.0)
    rss_connected = _rss_kb(server_pid)

    result = await asyncio.to_thread(run_pane, {**link, **urls})
    owner = await asyncpg.connect(urls["owner_url"])
    try:
        final = int(
            await owner.fetchval("SELECT event_seq FROM workspaces WHERE id = $1", workspace_id)
        )
    finally:
        await owner.close()
    deadline = time.monotonic() + 120
    while any(client.last < final for client in streams) and time.monotonic() < deadline:
        if any(task.done() for task in tasks):
            break
        await asyncio.sleep(0.05)
    rss_peak = _rss_kb(server_pid)
    for task in (*tasks, watcher):
        task.cancel()
    outcomes = await asyncio.gather(*tasks, watcher, return_exceptions=True)
    failed = [o for o in outcomes if isinstance(o, BaseException) and not _cancelled(o)]
    if failed:
        raise RuntimeError(f"{len(failed)} stream clients failed: {failed[0]!r}")

    latencies: list[float] = []
    wakeups.sort()
    woken_seqs = [seq for seq, _ in wakeups]
    for client in streams:
        got = sum(last - first + 1 for _, first, last in client.received)
        if client.out_of_order or client.last != final or got != final:
            raise RuntimeError(
                f"a client got {got} events up to {client.last}, {client.out_of_order} gaps"
                f" or repeats, not 1..{final} in order"
            )
        for arrived, first, last in client.received:
            for seq in range(first, last + 1):
                index = bisect.bisect_left(woken_seqs, seq)
                if index < len(wakeups):
                    latencies.append(arrived - wakeups[index][1])
    latencies.sort()
    return {
        "events": final,
        "sync_seconds": result["seconds"],
        "rss_before_kb": rss_before,
        "rss_connected_kb": rss_connected,
        "rss_peak_kb": rss_peak,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": 1000 * latencies[-1],
        "deliveries": len(latencies),
    }


def _cancelled(outcome: BaseException) -> bool:
    return isinstance(outcome, asyncio.CancelledError)


# --- the run --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()

    with bench_servers(DATABASE) as (admin_server, redis_url):
        owner_url = asyncio.run(_database(admin_server))
        app_url = database_url(admin_server, user="pane_app", database=DATABASE)
        user_id = asyncio.run(seed_feed(owner_url, options.events))
        token = AccessTokens(SIGNING_KEY, ttl_seconds=3600).issue(
            user_id=user_id, workspace_id=FEED_WORKSPACE, role="owner"
        )
        env = {
            "PANE_DATABASE_URL": app_url,
            "PANE_REDIS_URL": redis_url,
            "PANE_TOKEN_SIGNING_KEY": SIGNING_KEY.decode(),
            "PANE_DATA_DIR": tempfile.mkdtemp(prefix="pane-bench-changes-"),
            "PANE_LOG_LEVEL": "WARNING",
        }
        port = free_port()
        pane_runs: list[float] = []
        bare_runs: list[float] = []
        with server("pane.app:create_app", port, 1, env) as process:
            asyncio.run(read_through_pane(port, token))  # warm-up: caches and code paths
            for _ in range(options.rounds):
                seconds, read = asyncio.run(read_bare(owner_url))
                if read != options.events:
                    raise RuntimeError(f"the bare read found {read} events")
                bare_runs.append(seconds)
                seconds, read = asyncio.run(read_through_pane(port, token))
                if read != options.events:
                    raise RuntimeError(f"pane's feed gave {read} events, not {options.events}")
                pane_runs.append(seconds)

            urls = {
                "owner_url": owner_url,
                "app_url": app_url,
                "redis_url": redis_url,
                "key": Fernet.generate_key().decode(),
            }
            with simulator(options.leads) as simulator_url:
                stream = asyncio.run(
                    stream_under_sync(
                        urls, port, process.pid, options.clients, options.leads, simulator_url
                    )
                )
        report(options, min(pane_runs), min(bare_runs), stream)


def report(
    options: argparse.Namespace, pane_seconds: float, bare_seconds: float, stream: dict[str, Any]
) -> None:
    verdict = {True: "met", False: "MISSED"}
    events = options.events
    print(
        f"\nfeed: {events:,} events of one workspace in pages of {PAGE};"
        f" {os.cpu_count()} CPUs; best of {options.rounds}"
    )
    print(f"{'':34}{'seconds':>10}{'events/s':>12}")
    print(f"{'bare asyncpg keyset read':34}{bare_seconds:>10.2f}{events / bare_seconds:>12,.0f}")
    print(f"{'pane GET /v1/changes':34}{pane_seconds:>10.2f}{events / pane_seconds:>12,.0f}")
    ratio = bare_seconds / pane_seconds
    print(f"pane / bare: {ratio:.2f} (target >= 0.6: {verdict[ratio >= 0.6]})")
    clients = options.clients
    per_client = (stream["rss_connected_kb"] - stream["rss_before_kb"]) / clients
    print(
        f"\nstream: {clients} clients on one workspace while a sync writes {options.leads:,}"
        f" leads ({stream['events']:,} events, {stream['deliveries']:,} deliveries;"
        f" the sync took {stream['sync_seconds']:.1f}s)"
    )
    print(
        f"delivery latency from commit: p50 {stream['p50_ms']:.0f} ms, p99"
        f" {stream['p99_ms']:.0f} ms, max {stream['max_ms']:.0f} ms"
    )
    print(
        f"pane's RSS: {stream['rss_before_kb'] / 1024:.0f} MB before, "
        f"{stream['rss_connected_kb'] / 1024:.0f} MB with {clients} clients "
        f"({per_client:.0f} KB per client), {stream['rss_peak_kb'] / 1024:.0f} MB after the sync"
    )


if __name__ == "__main__":
    main()
