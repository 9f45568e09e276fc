"""The client connectors get: private targets refused, retries that honour Retry-After,
API-key, basic and OAuth2 client-credentials auth with one token fetch across workers."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import respx

from pane.connectors.base import CredentialsRejected
from pane.connectors.http import TargetNotAllowed, build_client
from pane.connectors.http.auth import ClientCredentialsAuth, HeaderKeyAuth, QueryKeyAuth
from pane.demo.simulator import Simulator

PUBLIC = "http://93.184.216.34"  # an IP literal: no DNS needed in the sandbox


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",
        "http://10.1.2.3/leads",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
@respx.mock
async def test_internal_targets_are_refused_before_anything_is_sent(url):
    route = respx.route().respond(200)
    async with build_client() as client:
        with pytest.raises(TargetNotAllowed, match="internal address"):
            await client.get(url)
    assert not route.called


@respx.mock
async def test_public_targets_pass_and_redirects_are_checked_too():
    respx.get(f"{PUBLIC}/ok").respond(200, json={"fine": True})
    respx.get(f"{PUBLIC}/moved").respond(302, headers={"Location": "http://10.0.0.5/secret"})
    internal = respx.get("http://10.0.0.5/secret").respond(200)
    async with build_client() as client:
        assert (await client.get(f"{PUBLIC}/ok")).json() == {"fine": True}
        with pytest.raises(TargetNotAllowed):
            await client.get(f"{PUBLIC}/moved")
    assert not internal.called


@respx.mock
async def test_private_targets_when_the_operator_allows_them():
    respx.get("http://127.0.0.1:8900/acme").respond(200)
    async with build_client(allow_private=True) as client:
        assert (await client.get("http://127.0.0.1:8900/acme")).status_code == 200


@respx.mock
async def test_429_and_5xx_are_retried_and_retry_after_is_honoured():
    route = respx.get(f"{PUBLIC}/leads")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "1"}),
        httpx.Response(503),
        httpx.Response(200, json={"data": []}),
    ]
    async with build_client(initial_wait=0.01) as client:
        started = time.monotonic()
        response = await client.get(f"{PUBLIC}/leads")
    assert response.status_code == 200
    assert route.call_count == 3
    assert time.monotonic() - started >= 1.0


@respx.mock
async def test_persistent_failure_gives_back_the_vendors_last_answer():
    route = respx.get(f"{PUBLIC}/leads").respond(500, json={"error": "database on fire"})
    async with build_client(attempts=3, initial_wait=0.01) as client:
        response = await client.get(f"{PUBLIC}/leads")
    assert response.status_code == 500
    assert response.json() == {"error": "database on fire"}
    assert route.call_count == 3


@respx.mock
async def test_connection_errors_are_retried_then_raised():
    route = respx.get(f"{PUBLIC}/leads")
    route.side_effect = [httpx.ConnectError("refused"), httpx.Response(200)]
    async with build_client(initial_wait=0.01) as client:
        assert (await client.get(f"{PUBLIC}/leads")).status_code == 200
    route.side_effect = httpx.ConnectError("refused")
    async with build_client(attempts=2, initial_wait=0.01) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{PUBLIC}/leads")


@respx.mock
async def test_api_keys_in_a_header_or_the_query():
    route = respx.get(f"{PUBLIC}/x").respond(200)
    async with build_client(auth=HeaderKeyAuth("X-Api-Key", "k1")) as client:
        await client.get(f"{PUBLIC}/x")
    assert route.calls[-1].request.headers["x-api-key"] == "k1"
    async with build_client(auth=QueryKeyAuth("token", "k2")) as client:
        await client.get(f"{PUBLIC}/x", params={"page": 2})
    assert route.calls[-1].request.url.params["token"] == "k2"
    assert route.calls[-1].request.url.params["page"] == "2"


async def test_a_flaky_vendor_is_read_to_the_end():
    flaky = Simulator(leads_per_vendor=120, initech_throttle_every=3, initech_fail_every=4)
    transport = httpx.ASGITransport(app=flaky.app)
    auth = httpx.BasicAuth("pane-demo", "initech-demo-password")
    async with build_client(
        base_url="http://vendors.test",
        auth=auth,
        allow_private=True,
        transport=transport,
        initial_wait=0.01,
    ) as client:
        url: str | None = "/initech/partner/leads?limit=25"
        uids: list[str] = []
        while url:
            reply = await client.get(url)
            assert reply.status_code == 200, reply.text
            uids += [lead["uid"] for lead in reply.json()]
            url = reply.links.get("next", {}).get("url")
    assert len(uids) == 120 == len(set(uids))
    assert flaky.initech.requests > 5  # the retries really happened


def _acme_client(
    simulator: Simulator, redis, secret: str = "acme-demo-secret"
) -> httpx.AsyncClient:
    auth = ClientCredentialsAuth(
        token_url="http://vendors.test/acme/oauth/token",
        client_id="pane-demo",
        client_secret=secret,
        redis=redis,
    )
    return build_client(
        base_url="http://vendors.test",
        auth=auth,
        allow_private=True,
        transport=httpx.ASGITransport(app=simulator.app),
        initial_wait=0.01,
    )


async def test_one_token_for_all_workers_and_one_refetch_on_401(redis):
    simulator = Simulator(leads_per_vendor=5, seed=int(time.time() * 1000) % 100000)
    secret = f"secret-{time.time_ns()}"  # a credential of this test's own: its own cache key
    simulator.acme.client_secret = secret
    workers = [_acme_client(simulator, redis, secret) for _ in range(3)]
    try:
        replies = await asyncio.gather(
            *(client.get("/acme/api/v2/leads") for client in workers for _ in range(4))
        )
        assert {reply.status_code for reply in replies} == {200}
        assert simulator.acme.token_requests == 1

        simulator.acme.tokens.clear()  # the vendor forgets every token it issued
        assert (await workers[0].get("/acme/api/v2/leads")).status_code == 200
        assert simulator.acme.token_requests == 2
        assert (await workers[1].get("/acme/api/v2/leads")).status_code == 200
        assert simulator.acme.token_requests == 2
    finally:
        for client in workers:
            await client.aclose()


async def test_refused_client_credentials_are_a_credentials_rejection(redis):
    simulator = Simulator(leads_per_vendor=1)
    async with _acme_client(simulator, redis, secret=f"wrong-{time.time_ns()}") as client:
        with pytest.raises(CredentialsRejected, match="invalid_client"):
            await client.get("/acme/api/v2/leads")
