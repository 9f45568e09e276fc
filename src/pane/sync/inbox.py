"""Applying a stored webhook delivery: its records through the one bulk-upsert path, with the
same events a sync writes, in one transaction with the delivery's outcome.

Run by the worker's ``apply_webhook`` job, at least once per delivery (the outbox relays it
again if the process that stored it died first; arq runs it again if its worker died): the
delivery's row is locked while it is applied and an applied delivery is left as it is, so a
second run changes nothing. A delivery whose link was paused meanwhile is held until the link
resumes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
import structlog

from pane.connectors.records import RECORD_TYPES
from pane.connectors.registry import webhook_scheme
from pane.connectors.webhooks import WebhookUnreadable
from pane.db.database import Database, workspace_scope
from pane.models.vendor import LinkStatus
from pane.sync.targets import TARGETS
from pane.sync.upsert import write_page

log = structlog.get_logger("pane.webhooks")

# As a run keeps them: the first failures, each with its payload.
KEPT_FAILURES = 200

_TAKE = """
SELECT d.status, d.body, d.link_id, l.connector, l.config, l.status AS link_status, l.vendor_id,
       v.name AS vendor_name
FROM webhook_inbox d
JOIN vendor_links l ON l.workspace_id = d.workspace_id AND l.id = d.link_id
JOIN vendors v ON v.id = l.vendor_id
WHERE d.workspace_id = $1 AND d.id = $2
FOR UPDATE OF d
"""
_OUTCOME = """
UPDATE webhook_inbox SET status = $3, error = $4, processed_at = now(),
  attempts = attempts + 1, created = $5, updated = $6, unchanged = $7, failed = $8,
  failures = $9, records = $10
WHERE workspace_id = $1 AND id = $2
"""


@dataclass(frozen=True, slots=True)
class Applied:
    status: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0


async def apply_delivery(
    database: Database, *, workspace_id: uuid.UUID, delivery_id: uuid.UUID
) -> Applied | None:
    """Apply one delivery; None when it is gone (its link was deleted). A body the connector
    cannot read fails the delivery, saying why; the database failing raises (the job is run
    again)."""
    async with database.transaction(workspace_scope(workspace_id)) as tx:
        row = await tx.connection.fetchrow(_TAKE, workspace_id, delivery_id)
        if row is None:
            return None
        if row["status"] == "applied":
            return Applied("applied")
        if row["link_status"] == LinkStatus.PAUSED:
            await tx.connection.execute(
                "UPDATE webhook_inbox SET status = 'held' WHERE workspace_id = $1 AND id = $2",
                workspace_id,
                delivery_id,
            )
            return Applied("held")
        link_id = row["link_id"]
        found = webhook_scheme(row["connector"], row["config"])
        try:
            if found is None:
                raise WebhookUnreadable(
                    f"the link's {row['connector']} connector no longer reads webhooks"
                )
            connector, config, _ = found
            pages = connector.webhook_pages(config, bytes(row["body"]))
        except WebhookUnreadable as exc:
            await tx.connection.execute(
                _OUTCOME, workspace_id, delivery_id, "failed", exc.reason, 0, 0, 0, 0, "[]", []
            )
            log.warning("webhook unreadable", delivery_id=str(delivery_id), reason=exc.reason)
            return Applied("failed")
        created = updated = unchanged = 0
        failures: list[dict[str, object]] = []
        changed: list[uuid.UUID] = []
        for page in pages:
            wanted = RECORD_TYPES[page.stream]
            records = [record for record in page.records if isinstance(record, wanted)]
            failures += [
                {"stream": page.stream.value, "reason": failure.reason, "raw": failure.raw}
                for failure in page.failures
            ]
            written = await write_page(
                tx,
                target=TARGETS[page.stream],
                records=records,
                workspace_id=workspace_id,
                vendor_id=row["vendor_id"],
                vendor_name=row["vendor_name"],
                link_id=link_id,
                run_id=None,
                delivery_id=delivery_id,
            )
            created += written.created
            updated += written.updated + written.deleted
            unchanged += written.unchanged
            changed += written.changed_ids
        await tx.connection.execute(
            _OUTCOME,
            workspace_id,
            delivery_id,
            "applied",
            None,
            created,
            updated,
            unchanged,
            len(failures),
            orjson.dumps(failures[:KEPT_FAILURES]).decode(),
            changed,
        )
    log.info(
        "webhook applied",
        delivery_id=str(delivery_id),
        created=created,
        updated=updated,
        unchanged=unchanged,
        failed=len(failures),
    )
    return Applied("applied", created, updated, unchanged, len(failures))
