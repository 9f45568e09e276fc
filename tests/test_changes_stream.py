"""The live change stream, against a real HTTP server: events as they commit, resumable with
Last-Event-ID, heartbeats, one read per audience for all its clients, access taken away ends
the stream, and a SIGTERM to pane closes every stream cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from pane.app import create_app
from pane.services import changes
from tests.conftest import Servers, make_settings, running_app
from tests.factories import Api, bearer
from tests.loopback import free_port


@dataclass
class Sse:
    """What a client has read off a stream so far."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    comments: int = 0
    ended: bool = False


@asynccontextmanager
async def stream(
    base_url: str, headers: dict[str, str], **params: Any
) -> AsyncIterator[tuple[Sse, asyncio.Task[None]]]:
    """Read a stream in the background; what arrives collects in the Sse."""
    seen = Sse()
    opened = asyncio.Event()

    async def read() -> None:
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=30) as client,
            client.stream("GET", "/v1/changes/stream", headers=headers, params=params) as response,
        ):
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            opened.set()
            event: dict[str, str] = {}
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    seen.comments += 1
                elif line.startswith("id:"):
                    event["id"] = line[3:].strip()
                elif line.startswith("data:"):
                    event["data"] = line[5:].strip()
                elif not line and "data" in event:
                    seen.ids.append(event["id"])
                    seen.events.append(orjson.loads(event["data"]))
                    event = {}
        seen.ended = True

    task = asyncio.create_task(read())
    try:
        async with asyncio.timeout(10):
            await opened.wait()
        yield seen, task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
async def live(servers: Servers, loopback: Any) -> AsyncIterator[str]:
    """pane on a real port, in this event loop."""
    port = free_port()
    app = create_app(make_settings(servers, stream_ping_seconds=0.3))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done())
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def rename(http: httpx.AsyncClient, owner: Any, name: str) -> None:
    response = await http.patch("/v1/workspace", json={"name": name}, headers=owner.headers)
    assert response.status_code == 200, response.text


async def test_changes_arrive_live_with_their_sequence_as_id(api: Api, http, live):
    owner = await api.signup()
    async with stream(live, owner.headers) as (seen, _):
        await asyncio.sleep(0.1)
        assert seen.events == [], "without a position, only what happens from now on"
        await rename(http, owner, "Live One")
        await rename(http, owner, "Live Two")
        await until(lambda: len(seen.events) == 2)
    assert [event["type"] for event in seen.events] == ["workspace.renamed"] * 2
    assert seen.ids == [str(event["seq"]) for event in seen.events] == ["2", "3"]
    assert seen.events[1]["data"]["changed"]["name"] == ["Live One", "Live Two"]


async def test_a_reconnect_with_last_event_id_misses_nothing(api: Api, http, live):
    owner = await api.signup()
    for number in range(3):
        await rename(http, owner, f"Before {number}")
    headers = {**owner.headers, "Last-Event-ID": "2"}
    async with stream(live, headers) as (seen, _):
        await until(lambda: len(seen.events) == 2)
        await rename(http, owner, "After")
        await until(lambda: len(seen.events) == 3)
    assert [event["seq"] for event in seen.events] == [3, 4, 5]
    assert seen.events[-1]["data"]["changed"]["name"][1] == "After"
    async with stream(live, owner.headers, after=0, types="workspace.created") as (only, _):
        await until(lambda: len(only.events) == 1)
        await rename(http, owner, "Filtered out")
        await asyncio.sleep(0.3)
    assert [event["type"] for event in only.events] == ["workspace.created"]


async def test_heartbeats_keep_a_quiet_stream_open(api: Api, live):
    owner = await api.signup()
    async with stream(live, owner.headers) as (seen, _):
        await until(lambda: seen.comments >= 2)
    assert seen.events == []


async def test_one_read_serves_every_client_of_a_workspace(api: Api, http, live, monkeypatch):
    owner = await api.signup()
    reads: list[uuid.UUID] = []
    real_read = changes.read

    async def counted(tx: Any, **kwargs: Any) -> Any:
        reads.append(kwargs["workspace_id"])
        return await real_read(tx, **kwargs)

    monkeypatch.setattr(changes, "read", counted)
    async with (
        stream(live, owner.headers) as (first, _),
        stream(live, owner.headers) as (second, _),
        stream(live, owner.headers) as (third, _),
    ):
        await asyncio.sleep(0.2)
        reads.clear()
        await rename(http, owner, "Fanned out")
        await until(lambda: all(len(s.events) == 1 for s in (first, second, third)))
    assert reads == [owner.workspace_id], "one read for the wake-up, not one per client"


async def test_a_filtered_stream_carries_only_what_it_asked_for(api: Api, http, live):
    owner = await api.signup()
    vendor = await api.new_vendor()
    other = await api.new_vendor()
    await api.link(owner, vendor)
    await api.link(owner, other)
    [lead_id] = await api.seed_leads(owner.workspace_id, vendor, 1)
    [other_lead] = await api.seed_leads(owner.workspace_id, other, 1)
    async with (
        stream(live, owner.headers, types="lead.updated", vendor_id=str(vendor)) as (mine, _),
        stream(live, owner.headers) as (everything, _),
    ):
        await rename(http, owner, "Filtered")
        for lead in (other_lead, lead_id):
            response = await http.patch(
                f"/v1/leads/{lead}", json={"status": "accepted"}, headers=owner.headers
            )
            assert response.status_code == 200, response.text
        await until(lambda: len(everything.events) == 3 and len(mine.events) == 1)
        await asyncio.sleep(0.2)
    assert [event["entity_id"] for event in mine.events] == [str(lead_id)]
    assert [event["type"] for event in everything.events] == [
        "workspace.renamed",
        "lead.updated",
        "lead.updated",
    ]


async def test_a_stream_ends_when_its_access_is_taken_away(api: Api, http, live):
    owner = await api.signup()
    member = await api.member(owner, "member")
    key = await api.api_key(owner, ["changes:read"])
    key_id = (await http.get("/v1/api-keys", headers=owner.headers)).json()["items"][-1]["id"]
    async with (
        stream(live, member.headers) as (as_member, member_task),
        stream(live, bearer(key)) as (as_key, key_task),
    ):
        removed = await http.delete(f"/v1/members/{member.user_id}", headers=owner.headers)
        assert removed.status_code == 204
        await asyncio.wait_for(member_task, 10)
        assert as_member.ended
        assert not key_task.done()
        revoked = await http.delete(f"/v1/api-keys/{key_id}", headers=owner.headers)
        assert revoked.status_code == 200
        await asyncio.wait_for(key_task, 10)
        assert as_key.ended
    assert [event["type"] for event in as_member.events] == []


async def test_a_vendor_stream_carries_only_its_own_events(api: Api, http, live):
    owner = await api.signup()
    vendor = await api.new_vendor()
    await api.link(owner, vendor)
    [lead_id] = await api.seed_leads(owner.workspace_id, vendor, 1)
    key = await api.vendor_key(vendor)
    params = {"workspace_id": str(owner.workspace_id)}
    async with stream(live, bearer(key), **params) as (seen, _):
        await rename(http, owner, "Not the vendor's business")
        response = await http.patch(
            f"/v1/leads/{lead_id}",
            json={"status": "accepted", "notes": "private"},
            headers=owner.headers,
        )
        assert response.status_code == 200
        await until(lambda: len(seen.events) == 1)
        await asyncio.sleep(0.2)
    assert [event["type"] for event in seen.events] == ["lead.updated"]
    assert seen.events[0]["data"]["changed"] == {"status": ["new", "accepted"]}


def test_sigterm_ends_open_streams_cleanly_and_the_server_exits(servers: Servers, api):
    """A real `pane serve`: the client sees its stream end properly (no broken chunk) and
    the process is gone within seconds."""
    owner = asyncio.run(_owner(servers))
    port = free_port()
    env = {
        **os.environ,
        **servers.env(),
        "PANE_REDIS_URL": servers.redis_url,
        "PANE_PORT": str(port),
        "PANE_TOKEN_SIGNING_KEY": "test-signing-key-" + "x" * 32,
        "PANE_DATA_DIR": str(servers.data_dir),
        "PANE_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pane", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        outcome = asyncio.run(_stream_then_stop(port, owner, process))
        assert outcome["ended_cleanly"], outcome
        process.wait(timeout=10)
        assert outcome["seconds_to_end"] < 3, outcome
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
        assert "Traceback" not in stderr, stderr
        assert "ASGI callable returned without completing response" not in stderr, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


async def _owner(servers: Servers) -> dict[str, str]:
    async with running_app(servers) as (_, client):
        account = await Api(http=client, admin_url="").signup()
        return account.headers


async def _stream_then_stop(
    port: int, headers: dict[str, str], process: subprocess.Popen[bytes]
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "pane serve did not start"
            await asyncio.sleep(0.1)
        async with client.stream("GET", "/v1/changes/stream", headers=headers) as response:
            assert response.status_code == 200
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            try:
                async for _ in response.aiter_bytes():
                    pass
            except httpx.RemoteProtocolError as exc:
                return {"ended_cleanly": False, "error": str(exc)}
            return {"ended_cleanly": True, "seconds_to_end": time.monotonic() - signalled}
