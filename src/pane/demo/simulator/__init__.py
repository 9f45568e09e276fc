"""The vendor simulator: several fictional partner APIs in one ASGI app, for the demo, the
tests and the sync benchmark. It runs over loopback like any vendor would.

    simulator = Simulator(leads_per_vendor=500)
    uvicorn.run(simulator.app, port=8900)   # or mount it, or use httpx.ASGITransport

    Simulator(leads_per_vendor=10, leads={"globex": 800_000})   # one big vendor

With ``live_interval`` each vendor makes a lead and moves one on at that pace, and the
vendors told where (``subscribe``) push each as it happens, by webhook signed per Standard
Webhooks, the way their manifests' ``webhooks:`` sections describe.

Serving a page costs a bisection and a slice of the vendor's change-ordered leads, so paging
through hundreds of thousands of leads stays linear. ``pane.demo.manifests`` holds the
``generic_rest`` manifests and the link each vendor needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import structlog
from starlette.applications import Starlette
from starlette.routing import Mount

from pane.connectors.webhooks import StandardWebhooks
from pane.demo.simulator.acme import AcmeNetworks
from pane.demo.simulator.globex import GlobexSecurity
from pane.demo.simulator.initech import InitechCloud
from pane.demo.simulator.northwind import NorthwindDistribution
from pane.demo.simulator.store import Lead, VendorData, seeded

log = structlog.get_logger("pane.simulator")
PUSH_TIMEOUT_SECONDS = 10

# The credentials each simulated vendor accepts until it is told to ``revoke()`` them: what a
# demo link holds (see ``pane.demo.manifests.demo_links``).
DEMO_CREDENTIALS: dict[str, dict[str, str]] = {
    "acme": {"client_id": "pane-demo", "client_secret": "acme-demo-secret"},
    "globex": {"api_key": "globex-demo-key"},
    "initech": {"username": "pane-demo", "password": "initech-demo-password"},
    "northwind": {"token": "northwind-demo-token"},
}


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Where a vendor pushes its leads, and the secret it signs them with."""

    url: str
    secret: str


@dataclass(frozen=True)
class SimulatedVendor:
    """How to reach one simulated vendor: what a reseller would type into the link form."""

    slug: str
    name: str
    kind: str
    path: str
    credentials: dict[str, str]


class Simulator:
    def __init__(
        self,
        *,
        leads_per_vendor: int = 200,
        leads: Mapping[str, int] | None = None,
        seed: int = 7,
        live_interval: float | None = None,
        initech_throttle_every: int = 0,
        initech_fail_every: int = 0,
        initech_slow_seconds: float = 0.0,
    ) -> None:
        # ``leads`` sets some vendors apart: a benchmark seeds one big vendor, not three.
        counts = dict.fromkeys(("acme", "globex", "initech"), leads_per_vendor)
        unknown = sorted(set(leads or {}) - set(counts))
        if unknown:
            raise ValueError(f"no simulated vendor {', '.join(unknown)} has leads")
        counts.update(leads or {})
        self.data = {
            "acme": seeded("ACME", seed, leads=counts["acme"]),
            "globex": seeded("GLX", seed + 1, leads=counts["globex"]),
            "initech": seeded("INI", seed + 2, leads=counts["initech"]),
        }
        acme, initech = DEMO_CREDENTIALS["acme"], DEMO_CREDENTIALS["initech"]
        self.acme = AcmeNetworks(self.data["acme"], acme["client_id"], acme["client_secret"])
        self.globex = GlobexSecurity(self.data["globex"], DEMO_CREDENTIALS["globex"]["api_key"])
        self.initech = InitechCloud(
            self.data["initech"],
            initech["username"],
            initech["password"],
            throttle_every=initech_throttle_every,
            fail_every=initech_fail_every,
            slow_seconds=initech_slow_seconds,
        )
        self.northwind = NorthwindDistribution(DEMO_CREDENTIALS["northwind"]["token"])
        self.live_interval = live_interval
        self.subscribers: dict[str, Subscriber] = {}
        self.pushed = 0
        self.app = Starlette(
            routes=[
                Mount(f"/{vendor.slug}", routes=vendor.routes())
                for vendor in (self.acme, self.globex, self.initech, self.northwind)
            ],
            lifespan=self._lifespan,
        )

    @property
    def vendors(self) -> list[SimulatedVendor]:
        return [
            SimulatedVendor(
                "acme",
                "Acme Networks",
                "vendor",
                "/acme",
                {"client_id": self.acme.client_id, "client_secret": self.acme.client_secret},
            ),
            SimulatedVendor(
                "globex", "Globex Security", "vendor", "/globex", {"api_key": self.globex.api_key}
            ),
            SimulatedVendor(
                "initech",
                "Initech Cloud",
                "vendor",
                "/initech",
                {"username": self.initech.username, "password": self.initech.password},
            ),
            SimulatedVendor(
                "northwind",
                "Northwind Distribution",
                "distributor",
                "/northwind",
                {"token": self.northwind.token},
            ),
        ]

    def advance(self, *, new: int = 3, changed: int = 2, deleted: int = 0) -> None:
        """What a vendor does between two syncs: new leads, moved leads, withdrawn leads."""
        for data in self.data.values():
            data.add_leads(new)
            data.change_leads(changed)
            if deleted:
                data.delete_leads(deleted)

    def revoke(self, slug: str) -> None:
        """The vendor stops accepting the credentials pane holds (a rotated secret)."""
        if slug == "acme":
            self.acme.client_secret = "rotated-by-the-vendor"
            self.acme.tokens.clear()
        elif slug == "globex":
            self.globex.api_key = "rotated-by-the-vendor"
        elif slug == "initech":
            self.initech.password = "rotated-by-the-vendor"
        elif slug == "northwind":
            self.northwind.token = "rotated-by-the-vendor"
        else:
            raise KeyError(slug)

    def subscribe(self, slug: str, url: str, secret: str) -> None:
        """From now on ``slug`` pushes the leads it makes or moves to ``url``."""
        if slug not in self.data:
            raise KeyError(f"{slug} has no leads to push")
        self.subscribers[slug] = Subscriber(url, secret)

    async def push(self, client: httpx.AsyncClient, slug: str, leads: list[Lead], kind: str) -> int:
        """Each lead in a webhook of its own, as the vendor's API lists it; how many were
        taken. One that is refused or unanswered is not sent again: the next sync reads it."""
        subscriber = self.subscribers.get(slug)
        if subscriber is None:
            return 0
        vendor = getattr(self, slug)
        taken = 0
        for lead in leads:
            body = orjson.dumps({"type": f"lead.{kind}", "data": vendor.lead_json(lead)})
            headers = StandardWebhooks().sign(
                subscriber.secret,
                body,
                webhook_id=f"msg_{uuid.uuid4().hex}",
                timestamp=int(time.time()),
            )
            try:
                answer = await client.post(
                    subscriber.url,
                    content=body,
                    headers={**headers, "content-type": "application/json"},
                )
            except httpx.HTTPError as exc:
                log.warning("webhook not delivered", vendor=slug, error=str(exc))
                continue
            if answer.is_success:
                taken += 1
            else:
                log.warning("webhook refused", vendor=slug, status=answer.status_code)
        self.pushed += taken
        return taken

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[dict[str, Any]]:
        task = asyncio.create_task(self._live()) if self.live_interval else None
        try:
            yield {}
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _live(self) -> None:
        assert self.live_interval
        async with httpx.AsyncClient(timeout=PUSH_TIMEOUT_SECONDS) as client:
            while True:
                await asyncio.sleep(self.live_interval)
                for slug, data in self.data.items():
                    made, moved = data.add_leads(1), data.change_leads(1)
                    await self.push(client, slug, made, "created")
                    await self.push(client, slug, moved, "updated")


__all__ = ["DEMO_CREDENTIALS", "SimulatedVendor", "Simulator", "Subscriber", "VendorData"]
