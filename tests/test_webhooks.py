"""Vendors push leads by signed webhook: a delivery is verified, stored before the 2xx, applied
through the sync's own upsert with the same events, listed in the link's webhook log and
replayable; a paused link holds deliveries until it resumes, a deleted one refuses them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
import orjson
import pytest
from arq import Retry
from arq.connections import ArqRedis
from cryptography.fernet import Fernet

from pane.connectors.webhooks import StandardWebhooks
from pane.db.database import Database
from pane.demo.manifests import demo_link
from pane.demo.simulator import Simulator
from pane.services import outbox, webhooks
from pane.sync.inbox import apply_delivery
from pane.sync.worker import apply_webhook
from tests.conftest import Servers, running_app
from tests.factories import Account, assert_problem, bearer, other_redis_db
from tests.processes import start_worker, wait_for

SIGNING = StandardWebhooks()
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def acme_lead(lead_id: str, *, status: str = "Open", at: datetime = T0, **fields: Any) -> dict:
    """A lead as Acme's API lists it (and pushes it)."""
    return {
        "leadId": lead_id,
        "firstName": "Ada",
        "lastName": "Lovelace",
        "emailAddress": f"{lead_id.lower()}@customer.example",
        "phoneNumber": None,
        "companyName": "Analytical Engines Ltd",
        "jobTitle": "CTO",
        "countryCode": "GB",
        "status": status,
        "score": 70,
        "campaignId": None,
        "createdAt": T0.isoformat(),
        "updatedAt": at.isoformat(),
        "isDeleted": False,
        **fields,
    }


def signed(secret: str, body: bytes, webhook_id: str | None = None) -> dict[str, str]:
    return SIGNING.sign(
        secret, body, webhook_id=webhook_id or f"msg_{uuid.uuid4().hex}", timestamp=int(time.time())
    )


def push_body(lead: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": "lead.created", "data": lead})


async def acme_link(
    api, loopback, owner: Account, simulator: Simulator | None = None
) -> tuple[str, str]:
    """A link to a simulated Acme (which pushes webhooks): (link id, its webhook secret)."""
    base = loopback.mount((simulator or Simulator(leads={"acme": 0})).app)
    vendor = await api.new_vendor()
    link = demo_link("acme", base)
    created = await api.http.post(
        "/v1/links", json={"vendor_id": str(vendor), **link}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["has_webhook_secret"] is True
    assert body["webhook_secret"].startswith("whsec_")
    return body["id"], body["webhook_secret"]


async def push(http, link_id: str, body: bytes, headers: dict[str, str]):
    return await http.post(
        f"/v1/hooks/{link_id}",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )


async def lead_row(admin_db, workspace_id: uuid.UUID, external_id: str):
    return await admin_db.fetchrow(
        "SELECT id, email, vendor_status, vendor_updated_at FROM leads"
        " WHERE workspace_id = $1 AND external_id = $2",
        workspace_id,
        external_id,
    )


async def inbox(admin_db, workspace_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await admin_db.fetch(
        "SELECT id, webhook_id, status, body FROM webhook_inbox WHERE workspace_id = $1"
        " ORDER BY id",
        workspace_id,
    )
    return [dict(row) for row in rows]


async def test_a_signed_lead_is_stored_then_applied_with_the_events_a_sync_writes(
    api, http, loopback, admin_db, redis, sync_deps
):
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    body = push_body(acme_lead("ACME-W1"))
    answer = await push(http, link_id, body, signed(secret, body, "msg_1"))
    assert answer.status_code == 202, answer.text
    received = answer.json()
    assert received["status"] == "received"
    assert received["duplicate"] is False
    [stored] = await inbox(admin_db, owner.workspace_id)
    assert stored["body"] == body, "kept as the exact bytes received"
    assert stored["webhook_id"] == "msg_1"
    assert await redis.exists(f"arq:job:webhook:{received['id']}"), "relayed after the commit"
    assert await lead_row(admin_db, owner.workspace_id, "ACME-W1") is None, "applied later"

    applied = await apply_delivery(
        sync_deps.database,
        workspace_id=owner.workspace_id,
        delivery_id=uuid.UUID(received["id"]),
    )
    assert applied is not None
    assert applied.created == 1
    lead = await lead_row(admin_db, owner.workspace_id, "ACME-W1")
    assert lead["email"] == "acme-w1@customer.example"

    feed = await http.get("/v1/changes", params={"types": "lead.created"}, headers=owner.headers)
    [event] = feed.json()["items"]
    assert event["entity_id"] == str(lead["id"])
    assert event["actor"] == {"type": "connector", "id": link_id}
    assert event["data"] == {
        "external_id": "ACME-W1",
        "run_id": None,
        "delivery_id": received["id"],
    }

    log = await http.get(f"/v1/links/{link_id}/webhooks", headers=owner.headers)
    assert log.status_code == 200, log.text
    [delivery] = log.json()["items"]
    assert delivery["id"] == received["id"]
    assert delivery["status"] == "applied"
    assert (delivery["created"], delivery["updated"], delivery["failed"]) == (1, 0, 0)
    assert delivery["records"] == [str(lead["id"])]
    one = await http.get(f"/v1/links/{link_id}/webhooks/{received['id']}", headers=owner.headers)
    assert one.json() == delivery


async def test_the_same_delivery_twenty_times_at_once_is_one_row_and_one_lead(
    api, http, loopback, admin_db, sync_deps
):
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    body = push_body(acme_lead("ACME-DUP"))
    headers = signed(secret, body, "msg_dup")
    answers = await asyncio.gather(*(push(http, link_id, body, headers) for _ in range(20)))
    assert sorted(answer.status_code for answer in answers) == [200] * 19 + [202]
    assert len({answer.json()["id"] for answer in answers}) == 1
    [stored] = await inbox(admin_db, owner.workspace_id)
    for _ in range(2):  # the job run twice (a relay and a retry) changes nothing the second time
        await apply_delivery(
            sync_deps.database, workspace_id=owner.workspace_id, delivery_id=stored["id"]
        )
    count = await admin_db.fetchval(
        "SELECT count(*) FROM leads WHERE workspace_id = $1", owner.workspace_id
    )
    assert count == 1


async def test_a_delivery_that_does_not_verify_is_a_401_and_stores_nothing(
    api, http, loopback, admin_db
):
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    body = push_body(acme_lead("ACME-BAD"))
    good = signed(secret, body)
    other_secret = SIGNING.sign(
        "whsec_" + "A" * 43 + "=", body, webhook_id="msg_x", timestamp=int(time.time())
    )
    for headers, said in (
        (good, "no webhook-signature entry matches"),  # with a tampered body below
        (other_secret, "no webhook-signature entry matches"),
        ({**good, "webhook-signature": "v1"}, "webhook-signature entries are"),
        ({**good, "webhook-signature": "v1,%%%"}, "not base64"),
        ({k: v for k, v in good.items() if k != "webhook-id"}, "webhook-id header is missing"),
        ({**good, "webhook-timestamp": str(int(time.time()) - 360)}, "more than 5 minutes"),
    ):
        sent = body + b" " if headers is good else body
        answer = await push(http, link_id, sent, headers)
        assert_problem(answer, 401)
        assert said in answer.json()["detail"]
    assert await inbox(admin_db, owner.workspace_id) == []


async def test_a_link_that_does_not_exist_or_takes_no_webhooks_refuses_and_stores_nothing(
    api, http, loopback, admin_db
):
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    body = push_body(acme_lead("ACME-GONE"))
    assert_problem(await push(http, str(uuid.uuid4()), body, signed(secret, body)), 404)

    price_file = await api.link(owner, await api.new_vendor())
    assert price_file["webhook_secret"] is None
    takes_none = await push(http, price_file["id"], body, signed(secret, body))
    unknown = await push(http, str(uuid.uuid4()), body, signed(secret, body))
    assert_problem(takes_none, 404)
    assert takes_none.json()["detail"].replace(price_file["id"], "") == unknown.json()[
        "detail"
    ].replace(unknown.url.path.rsplit("/", 1)[1], ""), "no telling a link from no link"
    rotated = await http.post(f"/v1/links/{price_file['id']}/webhook-secret", headers=owner.headers)
    assert_problem(rotated, 409)

    deleted = await http.delete(f"/v1/links/{link_id}", headers=owner.headers)
    assert deleted.status_code == 204
    assert_problem(await push(http, link_id, body, signed(secret, body)), 404)
    assert (
        await admin_db.fetchval(
            "SELECT count(*) FROM webhook_inbox WHERE workspace_id = $1", owner.workspace_id
        )
        == 0
    )


async def test_a_paused_link_holds_deliveries_and_applies_them_on_resume(
    api, http, loopback, admin_db, redis, sync_deps
):
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    assert (await http.post(f"/v1/links/{link_id}/pause", headers=owner.headers)).is_success
    body = push_body(acme_lead("ACME-HELD"))
    answer = await push(http, link_id, body, signed(secret, body))
    assert answer.status_code == 202
    assert answer.json()["status"] == "held"
    delivery_id = uuid.UUID(answer.json()["id"])
    assert not await redis.exists(f"arq:job:webhook:{delivery_id}")
    await apply_delivery(
        sync_deps.database, workspace_id=owner.workspace_id, delivery_id=delivery_id
    )
    assert await lead_row(admin_db, owner.workspace_id, "ACME-HELD") is None

    assert (await http.post(f"/v1/links/{link_id}/resume", headers=owner.headers)).is_success
    assert await redis.exists(f"arq:job:webhook:{delivery_id}")
    applied = await apply_delivery(
        sync_deps.database, workspace_id=owner.workspace_id, delivery_id=delivery_id
    )
    assert applied is not None
    assert applied.status == "applied"
    assert await lead_row(admin_db, owner.workspace_id, "ACME-HELD") is not None


async def test_an_older_vendor_update_arriving_late_changes_nothing(
    api, http, loopback, admin_db, sync_deps
):
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    newer = push_body(acme_lead("ACME-ORDER", status="Qualified", at=T0 + timedelta(hours=2)))
    older = push_body(acme_lead("ACME-ORDER", status="Unqualified", at=T0 + timedelta(hours=1)))
    ids = []
    for body in (newer, older):
        answer = await push(http, link_id, body, signed(secret, body))
        assert answer.status_code == 202
        ids.append(uuid.UUID(answer.json()["id"]))
    outcomes = [
        await apply_delivery(sync_deps.database, workspace_id=owner.workspace_id, delivery_id=i)
        for i in ids
    ]
    assert [(o.created, o.updated, o.unchanged) for o in outcomes if o] == [(1, 0, 0), (0, 0, 1)]
    lead = await lead_row(admin_db, owner.workspace_id, "ACME-ORDER")
    assert lead["vendor_status"] == "Qualified"
    assert lead["vendor_updated_at"] == T0 + timedelta(hours=2)


async def test_a_replayed_delivery_is_applied_again_without_making_anything_twice(
    api, http, loopback, admin_db, sync_deps
):
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    body = push_body(acme_lead("ACME-REPLAY"))
    delivery_id = (await push(http, link_id, body, signed(secret, body))).json()["id"]
    await apply_delivery(
        sync_deps.database, workspace_id=owner.workspace_id, delivery_id=uuid.UUID(delivery_id)
    )
    replayed = await http.post(
        f"/v1/links/{link_id}/webhooks/{delivery_id}/replay", headers=owner.headers
    )
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["status"] == "received"
    again = await apply_delivery(
        sync_deps.database, workspace_id=owner.workspace_id, delivery_id=uuid.UUID(delivery_id)
    )
    assert again is not None
    assert (again.created, again.unchanged) == (0, 1)
    events = await admin_db.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1 AND type LIKE 'lead.%'",
        owner.workspace_id,
    )
    assert events == 1
    missing = await http.post(
        f"/v1/links/{link_id}/webhooks/{uuid.uuid4()}/replay", headers=owner.headers
    )
    assert_problem(missing, 404)


async def test_a_body_the_connector_cannot_read_is_stored_and_fails_saying_why(
    api, http, loopback, sync_deps
):
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    body = b"<lead>not json</lead>"
    delivery_id = (await push(http, link_id, body, signed(secret, body))).json()["id"]
    applied = await apply_delivery(
        sync_deps.database, workspace_id=owner.workspace_id, delivery_id=uuid.UUID(delivery_id)
    )
    assert applied is not None
    assert applied.status == "failed"
    shown = await http.get(f"/v1/links/{link_id}/webhooks/{delivery_id}", headers=owner.headers)
    assert shown.json()["status"] == "failed"
    assert "not JSON" in shown.json()["error"]


async def test_a_rotated_secret_overlaps_with_the_old_one_only_as_long_as_asked(
    api, http, loopback
):
    owner = await api.signup()
    link_id, first = await acme_link(api, loopback, owner)
    rotated = await http.post(
        f"/v1/links/{link_id}/webhook-secret", json={"overlap_seconds": 3600}, headers=owner.headers
    )
    assert rotated.status_code == 201, rotated.text
    second = rotated.json()["secret"]
    assert second.startswith("whsec_")
    assert second != first
    assert rotated.json()["previous_valid_until"] is not None
    for secret in (first, second):
        body = push_body(acme_lead(f"ACME-ROT-{secret[-6:-1]}"))
        assert (await push(http, link_id, body, signed(secret, body))).status_code == 202

    third = await http.post(
        f"/v1/links/{link_id}/webhook-secret", json={"overlap_seconds": 0}, headers=owner.headers
    )
    assert third.json()["previous_valid_until"] is None
    body = push_body(acme_lead("ACME-ROT-OLD"))
    assert_problem(await push(http, link_id, body, signed(second, body)), 401)
    assert (
        await push(http, link_id, body, signed(third.json()["secret"], body))
    ).status_code == 202
    shown = await http.get(f"/v1/links/{link_id}", headers=owner.headers)
    assert "whsec_" not in shown.text


async def test_with_redis_away_a_delivery_is_still_acknowledged_and_applied_once_later(
    servers: Servers, api, loopback, admin_db, sync_deps
):
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    body = push_body(acme_lead("ACME-NOREDIS"))
    async with running_app(servers, redis_url="redis://127.0.0.1:1/0") as (_, client):
        answer = await push(client, link_id, body, signed(secret, body))
    assert answer.status_code == 202, answer.text
    delivery_id = answer.json()["id"]
    [waiting] = await admin_db.fetch(
        "SELECT job, job_id FROM outbox WHERE workspace_id = $1", owner.workspace_id
    )
    assert waiting["job_id"] == f"webhook:{delivery_id}"

    redis = ArqRedis.from_url(other_redis_db(servers.redis_url, 6))
    try:
        await redis.flushdb()
        assert await outbox.relay_pending(sync_deps.database, redis, older_than_seconds=0) >= 1
        assert await redis.exists(f"arq:job:webhook:{delivery_id}")
    finally:
        await redis.aclose()
    await apply_delivery(
        sync_deps.database, workspace_id=owner.workspace_id, delivery_id=uuid.UUID(delivery_id)
    )
    assert await lead_row(admin_db, owner.workspace_id, "ACME-NOREDIS") is not None


async def test_a_worker_killed_while_applying_a_delivery_leaves_exactly_one_lead(
    servers: Servers, api, loopback, admin_db
):
    """A real worker takes the delivery's job and is SIGKILLed while applying it (held at the
    delivery's row lock); a second worker carries the job out when arq gives it up: one lead,
    one event, the delivery applied."""
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    redis_url = other_redis_db(servers.redis_url, 5)
    redis = ArqRedis.from_url(redis_url)
    await redis.flushdb()
    body = push_body(acme_lead("ACME-KILLED"))
    async with running_app(servers, redis_url=redis_url) as (_, client):
        answer = await push(client, link_id, body, signed(secret, body))
    assert answer.status_code == 202, answer.text
    delivery_id = uuid.UUID(answer.json()["id"])
    first = second = None
    blocker = await asyncpg.connect(servers.admin_url)
    try:
        blocking = blocker.transaction()
        await blocking.start()
        await blocker.execute("SELECT 1 FROM webhook_inbox WHERE id = $1 FOR UPDATE", delivery_id)
        first = start_worker(servers, redis_url)

        async def waiting_on_the_row() -> bool:
            return bool(
                await admin_db.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%FROM webhook_inbox d%'"
                )
            )

        await wait_for(waiting_on_the_row, 30, "the first worker to be applying the delivery")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        await blocking.rollback()
        second = start_worker(servers, redis_url)

        async def applied() -> bool:
            status = await admin_db.fetchval(
                "SELECT status FROM webhook_inbox WHERE id = $1", delivery_id
            )
            return status == "applied"

        await wait_for(applied, 60, "the second worker to apply the delivery")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)
        await blocker.close()
        await redis.aclose()
    assert (
        await admin_db.fetchval(
            "SELECT count(*) FROM leads WHERE workspace_id = $1", owner.workspace_id
        )
        == 1
    )
    assert (
        await admin_db.fetchval(
            "SELECT count(*) FROM events WHERE workspace_id = $1 AND type = 'lead.created'",
            owner.workspace_id,
        )
        == 1
    )


async def test_the_simulated_vendors_push_the_leads_they_make_and_move(
    api, http, loopback, admin_db, sync_deps
):
    """What ``pane demo`` does: a simulated vendor told where pushes each lead it makes or moves,
    signed, shaped as its manifest reads it; applied, they are the vendor's leads in pane."""
    simulator = Simulator(leads={"acme": 0})
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner, simulator)
    simulator.subscribe("acme", f"/v1/hooks/{link_id}", secret)
    made = simulator.data["acme"].add_leads(3)
    assert await simulator.push(http, "acme", made, "created") == 3
    moved = simulator.data["acme"].change_leads(1)
    assert await simulator.push(http, "acme", moved, "updated") == 1
    for delivery in await inbox(admin_db, owner.workspace_id):
        applied = await apply_delivery(
            sync_deps.database, workspace_id=owner.workspace_id, delivery_id=delivery["id"]
        )
        assert applied is not None
        assert applied.status == "applied"
    for lead in made:
        row = await lead_row(admin_db, owner.workspace_id, lead.id)
        assert row["email"] == lead.email
    [changed] = moved
    row = await lead_row(admin_db, owner.workspace_id, changed.id)
    assert row["vendor_updated_at"] == changed.updated_at
    assert row["vendor_status"] == simulator.acme.lead_json(changed)["status"]

    simulator.subscribe("acme", f"/v1/hooks/{link_id}", "whsec_" + "A" * 43 + "=")
    assert await simulator.push(http, "acme", made[:1], "updated") == 0, "refused, not raised"


async def test_deliveries_taken_in_at_once_are_each_queued_by_the_time_they_are_answered(
    api, http, loopback, admin_db, redis
):
    """Commits that come together have their outbox rows relayed together: none is left
    behind for the worker's relay, and each is on the queue when its answer arrives."""
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    bodies = [push_body(acme_lead(f"ACME-BATCH-{n}")) for n in range(20)]
    answers = await asyncio.gather(
        *(push(http, link_id, body, signed(secret, body)) for body in bodies)
    )
    assert [answer.status_code for answer in answers] == [202] * 20
    for answer in answers:
        assert await redis.exists(f"arq:job:webhook:{answer.json()['id']}")
    left = await admin_db.fetchval(
        "SELECT count(*) FROM outbox WHERE workspace_id = $1", owner.workspace_id
    )
    assert left == 0


async def test_a_delivery_the_worker_cannot_apply_for_an_outage_is_tried_again_later():
    """The database away (or busy, or a deadlock): the job asks arq to run it again, later
    with each try, instead of failing the delivery for good."""
    away = Database("postgresql://pane_app@127.0.0.1:1/pane", pool_size=1, pool_timeout=1)
    try:
        for tries, seconds in ((1, 2), (3, 8), (9, 60)):
            with pytest.raises(Retry) as retried:
                await apply_webhook(
                    {"sync": SimpleNamespace(database=away), "job_try": tries},
                    workspace_id=str(uuid.uuid4()),
                    delivery_id=str(uuid.uuid4()),
                )
            assert retried.value.defer_score == seconds * 1000
    finally:
        await away.dispose()


async def test_a_vendor_reads_the_webhooks_it_pushed_while_its_link_is_active(api, http, loopback):
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    body = push_body(acme_lead("ACME-MINE"))
    pushed = (await push(http, link_id, body, signed(secret, body))).json()["id"]
    vendor_id = (await http.get(f"/v1/links/{link_id}", headers=owner.headers)).json()["vendor_id"]
    key = bearer(await api.vendor_key(uuid.UUID(vendor_id)))
    log = await http.get(f"/v1/links/{link_id}/webhooks", headers=key)
    assert [item["id"] for item in log.json()["items"]] == [pushed]
    one = await http.get(f"/v1/links/{link_id}/webhooks/{pushed}", headers=key)
    assert one.json()["status"] == "received"
    replay = await http.post(f"/v1/links/{link_id}/webhooks/{pushed}/replay", headers=key)
    assert_problem(replay, 403)
    assert (await http.post(f"/v1/links/{link_id}/pause", headers=owner.headers)).is_success
    assert_problem(await http.get(f"/v1/links/{link_id}/webhooks", headers=key), 404)


async def test_a_vendor_signing_its_own_way_is_verified_as_its_manifest_declares(
    api, http, loopback, admin_db
):
    """A manifest naming GitHub-style signing (an HMAC of the body in X-Hub-Signature-256, the
    delivery's id in its own header): such deliveries are taken in, Standard Webhooks ones
    and a wrong signature are not."""
    base = loopback.mount(Simulator(leads={"acme": 0}).app)
    link = demo_link("acme", base)
    link["config"]["manifest"]["webhooks"]["signature"] = {
        "type": "hmac_sha256",
        "header": "X-Hub-Signature-256",
        "prefix": "sha256=",
        "id_header": "X-Delivery",
    }
    owner = await api.signup()
    created = await http.post(
        "/v1/links",
        json={"vendor_id": str(await api.new_vendor()), **link},
        headers=owner.headers,
    )
    link_id, secret = created.json()["id"], created.json()["webhook_secret"]
    body = push_body(acme_lead("ACME-HUB"))
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    taken = await push(
        http, link_id, body, {"x-hub-signature-256": f"sha256={mac}", "x-delivery": "d-1"}
    )
    assert taken.status_code == 202, taken.text
    assert_problem(await push(http, link_id, body, signed(secret, body)), 401)
    wrong = await push(
        http, link_id, body, {"x-hub-signature-256": "sha256=" + "0" * 64, "x-delivery": "d-2"}
    )
    assert "X-Hub-Signature-256 does not match" in assert_problem(wrong, 401)["detail"]
    [stored] = await inbox(admin_db, owner.workspace_id)
    assert stored["webhook_id"] == "d-1"


async def test_a_delivery_left_unapplied_is_asked_for_again(
    servers: Servers, api, http, loopback, admin_db, sync_deps
):
    """Its job ran out of tries while the database was away: the worker's sweep asks for the
    delivery again through the outbox once it has waited long enough, and leaves recent and
    applied ones alone; a job still queued for it is not queued twice."""
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    ids = []
    for name in ("ACME-STRANDED", "ACME-RECENT", "ACME-APPLIED"):
        body = push_body(acme_lead(name))
        ids.append(uuid.UUID((await push(http, link_id, body, signed(secret, body))).json()["id"]))
    stranded, _, applied = ids
    await apply_delivery(sync_deps.database, workspace_id=owner.workspace_id, delivery_id=applied)
    await admin_db.execute(
        "UPDATE webhook_inbox SET received_at = now() - interval '1 hour'"
        " WHERE id = ANY($1::uuid[])",
        [stranded, applied],
    )
    assert await webhooks.requeue_stranded(sync_deps.database) >= 1
    asked = await admin_db.fetch(
        "SELECT job_id FROM outbox WHERE workspace_id = $1", owner.workspace_id
    )
    assert [row["job_id"] for row in asked] == [f"webhook:{stranded}"]

    redis = ArqRedis.from_url(other_redis_db(servers.redis_url, 6))
    try:
        await redis.flushdb()  # the job that ran out of tries is gone from the queue
        assert await outbox.relay_pending(sync_deps.database, redis, older_than_seconds=0) >= 1
        assert await redis.exists(f"arq:job:webhook:{stranded}")
    finally:
        await redis.aclose()
    await apply_delivery(sync_deps.database, workspace_id=owner.workspace_id, delivery_id=stranded)
    assert await lead_row(admin_db, owner.workspace_id, "ACME-STRANDED") is not None


async def test_a_secret_the_servers_keys_cannot_open_is_a_503_that_stores_nothing(
    api, http, loopback, admin_db
):
    """The operator dropped the credential key that sealed the link's secret: the vendor is
    told to try again later, nothing is stored, and nothing is a 500."""
    owner = await api.signup()
    link_id, secret = await acme_link(api, loopback, owner)
    await admin_db.execute(
        "UPDATE vendor_links SET webhook_secret_encrypted = $2 WHERE id = $1",
        uuid.UUID(link_id),
        Fernet(Fernet.generate_key()).encrypt(secret.encode()).decode(),
    )
    body = push_body(acme_lead("ACME-NOKEY"))
    answer = await push(http, link_id, body, signed(secret, body))
    assert "cannot be opened" in assert_problem(answer, 503)["detail"]
    assert answer.headers["retry-after"] == "300"
    assert await inbox(admin_db, owner.workspace_id) == []
