"""``pane demo``: pane, its worker and the simulated vendors in one process; a demo workspace
that links every simulated vendor through the public API, a first sync with a progress bar,
a summary, then the pane kept live until Ctrl-C while the vendors produce new leads."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from pane.config import Settings
from pane.demo.manifests import demo_links
from pane.demo.simulator import Simulator
from pane.errors import Conflict
from pane.operator import add_catalog_vendor

DEMO_EMAIL = "demo@pane.example"
DEMO_PASSWORD = "pane-demo-password"
DEMO_WORKSPACE = "Demo Reseller GmbH"
# Fast enough to see the simulated vendors' new leads arrive, within the schema's minimum.
DEMO_SYNC_INTERVAL_SECONDS = 60
FIRST_SYNC_TIMEOUT_SECONDS = 120


class DemoFailed(Exception):
    """The demo could not set itself up; the message says what pane answered."""


def _expect(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
    if response.status_code != status:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise DemoFailed(f"{what} failed ({response.status_code}): {detail}")
    body: dict[str, Any] = response.json()
    return body


@dataclass(frozen=True)
class DemoOptions:
    simulator_port: int = 8900
    leads_per_vendor: int = 500
    live_interval: float = 20.0


async def _serve(server: uvicorn.Server) -> asyncio.Task[None]:
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn exposes readiness only as a flag
        if task.done():
            await task  # raises why it could not start
            raise DemoFailed("a server stopped while starting")
        await asyncio.sleep(0.05)
    return task


def _server(app: Any, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )


async def _account(client: httpx.AsyncClient) -> dict[str, str]:
    """Sign the demo user up, or in again on a later run; the bearer header."""
    login = await client.post(
        "/v1/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    )
    if login.status_code == 200:
        tokens = login.json()
    else:
        signup = await client.post(
            "/v1/auth/signup",
            json={
                "email": DEMO_EMAIL,
                "password": DEMO_PASSWORD,
                "name": "Demo Reseller",
                "workspace_name": DEMO_WORKSPACE,
            },
        )
        tokens = _expect(signup, 201, "signing the demo user up")["tokens"]
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _catalog_vendor(
    settings: Settings, client: httpx.AsyncClient, headers: dict[str, str], vendor: Any
) -> str:
    try:
        await add_catalog_vendor(
            settings, slug=vendor.slug, name=vendor.name, kind=vendor.kind, website=None
        )
    except Conflict:
        pass  # added by an earlier demo
    except DBAPIError as exc:
        raise DemoFailed(
            "adding the simulated vendors to the catalog needs the schema owner"
            f" (PANE_MIGRATION_DATABASE_URL): {str(exc.orig).splitlines()[0]}"
        ) from exc
    found = await client.get("/v1/vendors", params={"q": vendor.name}, headers=headers)
    for item in _expect(found, 200, "looking the simulated vendors up")["items"]:
        if item["slug"] == vendor.slug:
            return str(item["id"])
    raise DemoFailed(f"the simulated vendor {vendor.slug} is not in the catalog")


async def _links(
    settings: Settings,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    simulator: Simulator,
    simulator_url: str,
) -> dict[str, str]:
    """Link every simulated vendor (once); their link ids by vendor name."""
    existing = await client.get("/v1/links", params={"limit": 200}, headers=headers)
    listed = _expect(existing, 200, "listing the demo's links")["items"]
    by_vendor = {item["vendor_id"]: item["id"] for item in listed}
    links = demo_links(simulator_url)
    linked: dict[str, str] = {}
    for vendor in simulator.vendors:
        vendor_id = await _catalog_vendor(settings, client, headers, vendor)
        if vendor_id in by_vendor:
            linked[vendor.name] = by_vendor[vendor_id]
            continue
        response = await client.post(
            "/v1/links",
            json={
                "vendor_id": vendor_id,
                **links[vendor.slug],
                "sync_interval_seconds": DEMO_SYNC_INTERVAL_SECONDS,
            },
            headers=headers,
        )
        linked[vendor.name] = _expect(response, 201, f"linking {vendor.name}")["id"]
    return linked


async def _subscribe(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    simulator: Simulator,
    links: dict[str, str],
    base_url: str,
) -> None:
    """Have each vendor that makes leads push them to its link, signed with a fresh secret (a
    link made by an earlier demo showed its secret then, and never again)."""
    for vendor in simulator.vendors:
        if vendor.slug not in simulator.data:
            continue
        link_id = links[vendor.name]
        rotated = await client.post(
            f"/v1/links/{link_id}/webhook-secret", json={"overlap_seconds": 0}, headers=headers
        )
        secret = _expect(rotated, 201, f"making {vendor.name}'s webhook secret")["secret"]
        simulator.subscribe(vendor.slug, f"{base_url}/v1/hooks/{link_id}", secret)


async def _first_sync(
    client: httpx.AsyncClient, headers: dict[str, str], links: dict[str, str], console: Console
) -> dict[str, dict[str, Any]]:
    runs: dict[str, str] = {}
    for name, link_id in links.items():
        started = await client.post(f"/v1/links/{link_id}/sync", headers=headers)
        runs[name] = _expect(started, 202, f"syncing {name}")["id"]
    finished: dict[str, dict[str, Any]] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[state]}"))
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        bars = {name: progress.add_task(name, total=1, state="queued") for name in runs}
        deadline = time.monotonic() + FIRST_SYNC_TIMEOUT_SECONDS
        while len(finished) < len(runs) and time.monotonic() < deadline:
            for name, run_id in runs.items():
                if name in finished:
                    continue
                reply = await client.get(f"/v1/links/{links[name]}/runs/{run_id}", headers=headers)
                run = reply.json()
                state = f"{run['status']}: {run['fetched']} records"
                done = run["status"] in ("succeeded", "failed")
                progress.update(bars[name], completed=1 if done else 0, state=state)
                if done:
                    finished[name] = run
            await asyncio.sleep(0.3)
    return finished


async def _count(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, vendor_id: str
) -> int:
    total, cursor = 0, None
    while True:
        params: dict[str, str | int] = {"vendor_id": vendor_id, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = _expect(
            await client.get(path, params=params, headers=headers), 200, f"reading {path}"
        )
        total += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return total


async def _summary(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    links: dict[str, str],
    runs: dict[str, dict[str, Any]],
    console: Console,
) -> None:
    """What arrived, read through the API like any client of pane."""
    rows = []
    for name, link_id in sorted(links.items()):
        link = _expect(
            await client.get(f"/v1/links/{link_id}", headers=headers), 200, f"reading {name}"
        )
        counts = [
            await _count(client, headers, path, link["vendor_id"])
            for path in ("/v1/leads", "/v1/campaigns", "/v1/price-items", "/v1/assets")
        ]
        rows.append((name, counts))
    table = Table(title="Your demo workspace")
    for column in ("vendor", "leads", "campaigns", "price items", "assets", "first sync"):
        table.add_column(column, justify="left" if column in ("vendor", "first sync") else "right")
    for name, counts in rows:
        run = runs.get(name, {})
        outcome = run.get("status", "not finished")
        if run.get("error"):
            outcome += f" ({run['error'][:60]})"
        table.add_row(name, *(str(count) for count in counts), outcome)
    console.print(table)


async def run_demo(settings: Settings, options: DemoOptions) -> None:
    """Everything in one event loop: simulator, API, worker; then seed, sync, and stay up."""
    from pane.app import create_app
    from pane.sync.worker import build_worker, stop_in_process

    console = Console()
    simulator = Simulator(
        leads_per_vendor=options.leads_per_vendor,
        live_interval=options.live_interval,
        # Initech is the flaky one: now and then a 429 with Retry-After, which pane honours
        initech_throttle_every=5,
    )
    vendors = _server(simulator.app, options.simulator_port)
    vendors_task = await _serve(vendors)
    api = _server(create_app(settings), settings.port)
    api_task = await _serve(api)
    worker = build_worker(settings, handle_signals=False)
    worker_task = asyncio.create_task(worker.async_run())
    base_url = f"http://127.0.0.1:{settings.port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            headers = await _account(client)
            simulator_url = f"http://127.0.0.1:{options.simulator_port}"
            links = await _links(settings, client, headers, simulator, simulator_url)
            console.print(f"Linked {len(links)} simulated vendors; first sync:")
            runs = await _first_sync(client, headers, links, console)
            await _summary(client, headers, links, runs, console)
            await _subscribe(client, headers, simulator, links, base_url)
        console.print(
            f"\npane is live at [bold]{base_url}[/] (API docs: {base_url}/docs)\n"
            f"  log in: {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            f"  POST {base_url}/v1/auth/login with those, then GET /v1/leads, /v1/campaigns,\n"
            f"  /v1/price-items/compare?sku=FW-200, /v1/assets with the access token.\n"
            f"The simulated vendors (http://127.0.0.1:{options.simulator_port}) add leads every"
            f" {options.live_interval:g} s and push each to pane by signed webhook (see"
            f" GET /v1/links/{{id}}/webhooks); pane also syncs each link every"
            f" {DEMO_SYNC_INTERVAL_SECONDS} s. Ctrl-C stops everything."
        )
        await asyncio.wait([api_task, vendors_task, worker_task], return_when="FIRST_COMPLETED")
    except httpx.TransportError:
        if not api.should_exit:
            raise
        # stopped (Ctrl-C, SIGTERM) while setting up: the API went away under the demo's requests
    finally:
        # servers asked to stop, not cancelled: each runs its shutdown (and its lifespan's)
        api.should_exit = vendors.should_exit = True
        await stop_in_process(worker, worker_task)
        await asyncio.gather(api_task, vendors_task, return_exceptions=True)
