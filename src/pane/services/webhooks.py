"""Webhooks vendors push to a link: received, stored, then applied.

A delivery is checked against the link's signing secrets (the connector says how its vendor
signs), stored in ``webhook_inbox`` exactly as it came and committed before the vendor hears
2xx; the same vendor id again is a 2xx that changes nothing. Applying it (``pane.sync.inbox``)
happens after the commit, through the outbox, so neither a Redis that is down nor a process
that dies loses it. A paused link's deliveries are held and released when it resumes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from pane.connectors.registry import webhook_scheme
from pane.connectors.webhooks import SignatureRefused, WebhookScheme
from pane.db.database import Database, Transaction, workspace_scope
from pane.errors import NotFound, Unauthenticated, Unavailable
from pane.ids import new_id
from pane.models.base import utcnow
from pane.models.vendor import LinkStatus
from pane.principal import Principal, VendorPrincipal, WorkspacePrincipal
from pane.secrets import CredentialDecryptError, KeyRing
from pane.services import outbox
from pane.services.audit import record_audit
from pane.services.lists import BY_ID, ListQuery, Page

APPLY_JOB = "apply_webhook"
# What of a delivery's headers is kept with it: what identifies and describes it, never
# anything a vendor might put credentials in.
KEPT_HEADERS = ("content-type", "user-agent", "webhook-id", "webhook-timestamp")

DELIVERY_COLUMNS = (
    "id, link_id, webhook_id, received_at, status, attempts, error, processed_at, created,"
    " updated, unchanged, failed, failures, records"
)


# A delivery still not applied this long after it came is queued again (its job ran out of
# tries, or was lost with Redis).
STRANDED_AFTER_SECONDS = 600
STRANDED_BATCH = 500


def apply_job_id(delivery_id: uuid.UUID) -> str:
    return f"webhook:{delivery_id}"


def apply_job_kwargs(workspace_id: uuid.UUID, delivery_id: uuid.UUID) -> dict[str, Any]:
    return {"workspace_id": str(workspace_id), "delivery_id": str(delivery_id)}


# A webhook comes with every change a vendor makes: parsing the link's manifest and opening
# its secret for each one was a tenth of the work of taking it in (bench.webhooks, py-spy).
# Both are kept by the text stored (a changed config or a new secret is other text, so it is
# read afresh).
@lru_cache(maxsize=1024)
def _scheme(connector: str, config: str) -> WebhookScheme | None:
    found = webhook_scheme(connector, orjson.loads(config))
    return None if found is None else found[2]


@lru_cache(maxsize=4096)
def _opened(keyring: KeyRing, sealed: str) -> str:
    return keyring.decrypt(sealed).decode()


@dataclass(frozen=True, slots=True)
class Received:
    delivery_id: uuid.UUID
    status: str
    duplicate: bool


_LINK = """
SELECT workspace_id, connector, config::text AS config, status, webhook_secret_encrypted,
       webhook_previous_secret_encrypted, webhook_previous_secret_until
FROM vendor_links WHERE id = $1
"""
_STORE = """
INSERT INTO webhook_inbox (workspace_id, id, link_id, webhook_id, headers, body, status)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (workspace_id, link_id, webhook_id) DO NOTHING
RETURNING id, status
"""
_STORED = """
SELECT id, status FROM webhook_inbox WHERE workspace_id = $1 AND link_id = $2 AND webhook_id = $3
"""


async def receive(
    tx: Transaction,
    *,
    keyring: KeyRing,
    link_id: uuid.UUID,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
) -> Received:
    """Verify and store one delivery (``headers`` with lowercase names), in a transaction
    scoped to the workspace of the link (``pushed_to_scope``), if there is one."""
    # One answer for a link that does not exist and for one that takes no webhooks: a caller
    # without credentials learns nothing about the links of a workspace.
    refused = NotFound(
        f"no link {link_id} takes webhooks (none exists, its connector declares none, or it"
        " has no signing secret yet): nothing was stored"
    )
    link = await tx.connection.fetchrow(_LINK, link_id)
    found = None if link is None else _scheme(link["connector"], link["config"])
    if link is None or found is None or link["webhook_secret_encrypted"] is None:
        raise refused
    workspace_id = link["workspace_id"]
    sealed = [link["webhook_secret_encrypted"]]
    until = link["webhook_previous_secret_until"]
    if link["webhook_previous_secret_encrypted"] and until is not None and until > utcnow():
        sealed.append(link["webhook_previous_secret_encrypted"])
    try:
        secrets = [_opened(keyring, secret) for secret in sealed]
    except CredentialDecryptError:
        # The server's credential keys lost the one that sealed the secret: an operator's
        # mistake a vendor can only wait out (its retries come back once the key is restored).
        raise Unavailable(
            "this link's signing secret cannot be opened with this server's credential keys;"
            " nothing was stored, send it again later",
            retry_after=300,
        ) from None
    try:
        verified = found.verify(secrets, headers, body, now=now)
    except SignatureRefused as exc:
        raise Unauthenticated(f"webhook refused: {exc.reason}; nothing was stored") from None
    status = "held" if link["status"] == LinkStatus.PAUSED else "received"
    kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
    stored = await tx.connection.fetchrow(
        _STORE,
        workspace_id,
        new_id(),
        link_id,
        verified.webhook_id,
        orjson.dumps(kept).decode(),
        body,
        status,
    )
    if stored is None:
        again = await tx.connection.fetchrow(_STORED, workspace_id, link_id, verified.webhook_id)
        assert again is not None
        return Received(again["id"], again["status"], duplicate=True)
    if status == "received":
        await _apply_later(tx, workspace_id, stored["id"])
    return Received(stored["id"], status, duplicate=False)


async def _apply_later(tx: Transaction, workspace_id: uuid.UUID, delivery_id: uuid.UUID) -> None:
    await outbox.add(
        tx,
        workspace_id=workspace_id,
        job=APPLY_JOB,
        kwargs=apply_job_kwargs(workspace_id, delivery_id),
        job_id=apply_job_id(delivery_id),
    )


async def requeue_stranded(
    database: Database, *, older_than_seconds: float = STRANDED_AFTER_SECONDS
) -> int:
    """Ask again, through the outbox, for the deliveries left ``received`` for a while (their
    job ran out of tries, or was lost with Redis); how many. One whose job is still queued or
    running is left to it when the outbox row is relayed."""
    async with database.transaction() as tx:
        stranded = await tx.connection.fetch(
            "SELECT workspace_id, id FROM pane_stranded_webhooks($1, $2 * interval '1 second')",
            STRANDED_BATCH,
            older_than_seconds,
        )
    by_workspace: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row in stranded:
        by_workspace.setdefault(row["workspace_id"], []).append(row["id"])
    for workspace_id, deliveries in by_workspace.items():
        async with database.transaction(workspace_scope(workspace_id)) as tx:
            for delivery_id in deliveries:
                await _apply_later(tx, workspace_id, delivery_id)
    return len(stranded)


async def release_held(tx: Transaction, *, workspace_id: uuid.UUID, link_id: uuid.UUID) -> int:
    """A resumed link's held deliveries, in the order they came, to be applied now."""
    released = await tx.connection.fetch(
        "UPDATE webhook_inbox SET status = 'received' WHERE workspace_id = $1 AND link_id = $2"
        " AND status = 'held' RETURNING id",
        workspace_id,
        link_id,
    )
    for row in sorted(released, key=lambda row: row["id"]):
        await _apply_later(tx, workspace_id, row["id"])
    return len(released)


async def _link_status(tx: Transaction, principal: Principal, link_id: uuid.UUID) -> str:
    """The link's status, if the principal sees the link: its workspace's, or its vendor's
    while the link is active."""
    if isinstance(principal, VendorPrincipal):
        status = await tx.connection.fetchval(
            "SELECT status FROM vendor_links WHERE vendor_id = $1 AND id = $2 AND status = $3",
            principal.vendor_id,
            link_id,
            LinkStatus.ACTIVE.value,
        )
    else:
        status = await tx.connection.fetchval(
            "SELECT status FROM vendor_links WHERE workspace_id = $1 AND id = $2",
            principal.workspace_id,
            link_id,
        )
    if status is None:
        raise NotFound(f"no link {link_id}")
    return str(status)


async def list_deliveries(
    tx: Transaction, *, principal: Principal, link_id: uuid.UUID, cursor: str | None, limit: int
) -> Page:
    """Newest first; for the link's vendor, the webhooks it pushed to it."""
    await _link_status(tx, principal, link_id)
    query = ListQuery(
        kind="webhooks",
        source="webhook_inbox",
        columns=DELIVERY_COLUMNS,
        order=BY_ID,
        descending=True,
    )
    if not isinstance(principal, VendorPrincipal):
        query.within("workspace_id", principal.workspace_id)
    query.equals("link_id", link_id)
    return await query.page(tx, cursor=cursor, limit=limit)


async def get_delivery(
    tx: Transaction, *, principal: Principal, link_id: uuid.UUID, delivery_id: uuid.UUID
) -> dict[str, Any]:
    await _link_status(tx, principal, link_id)
    row = await tx.connection.fetchrow(
        f"SELECT {DELIVERY_COLUMNS} FROM webhook_inbox"  # noqa: S608 - fixed column names
        " WHERE link_id = $1 AND id = $2",
        link_id,
        delivery_id,
    )
    if row is None:
        raise NotFound(f"no webhook delivery {delivery_id} on link {link_id}")
    return dict(row)


async def replay(
    tx: Transaction, *, actor: WorkspacePrincipal, link_id: uuid.UUID, delivery_id: uuid.UUID
) -> dict[str, Any]:
    """Apply a delivery again, as it was received (after a mapping fix, say); held instead
    while the link is paused. Applying twice changes nothing the first did not."""
    paused = await _link_status(tx, actor, link_id) == LinkStatus.PAUSED
    status = "held" if paused else "received"
    row = await tx.connection.fetchrow(
        f"UPDATE webhook_inbox SET status = $4, error = NULL"  # noqa: S608 - fixed column names
        f" WHERE workspace_id = $1 AND link_id = $2 AND id = $3 RETURNING {DELIVERY_COLUMNS}",
        actor.workspace_id,
        link_id,
        delivery_id,
        status,
    )
    if row is None:
        raise NotFound(f"no webhook delivery {delivery_id} on link {link_id}")
    if status == "received":
        await _apply_later(tx, actor.workspace_id, delivery_id)
    await record_audit(
        tx,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        action="webhook.replayed",
        target_type="webhook_delivery",
        target_id=delivery_id,
        details={"link_id": str(link_id)},
    )
    return dict(row)
