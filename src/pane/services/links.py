"""A workspace's links to vendors: connector, non-secret config, encrypted credentials, status."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pane.catalogue import EventType, LinkState, LinkUpdated, Payload
from pane.connectors.base import Connector
from pane.connectors.registry import connectors, webhook_scheme
from pane.connectors.webhooks import new_secret
from pane.db.database import Transaction
from pane.errors import Conflict, Forbidden, Invalid, NotFound
from pane.ids import new_id
from pane.models import Vendor, VendorLink
from pane.models.base import utcnow
from pane.models.vendor import DISCLOSABLE_LEAD_FIELDS, LinkStatus
from pane.principal import Principal, UserPrincipal, VendorPrincipal, WorkspacePrincipal
from pane.secrets import KeyRing
from pane.services import events, webhooks
from pane.services.audit import record_audit
from pane.services.events import NewEvent
from pane.services.lists import BY_ID, ListQuery, Page


class LinkCheck(Protocol):
    """Proves a link works against its vendor and gives back the credentials to store (a vendor
    may rotate a refresh token on first use). The application wires in
    ``pane.sync.connect.check_link``; a service builds no HTTP client."""

    def __call__(
        self,
        *,
        connector: str,
        config: dict[str, Any],
        credentials: dict[str, Any],
        holder: uuid.UUID,
    ) -> Awaitable[dict[str, Any]]: ...


def _field_errors(exc: ValidationError, prefix: str) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join([prefix, *(str(part) for part in error["loc"])]),
            "message": error["msg"],
        }
        for error in exc.errors()
    ]


def _connector(name: str) -> type[Connector]:
    found = connectors().get(name)
    if found is None:
        available = ", ".join(connectors()) or "none installed"
        raise Invalid(
            f"no connector {name!r} is installed (available: {available})",
            errors=[{"field": "body.connector", "message": "unknown connector"}],
        )
    return found


def validated_config(connector: type[Connector], config: dict[str, Any]) -> dict[str, Any]:
    """The config as the connector reads it (defaults filled in), or a 422 naming the fields."""
    try:
        return connector.config_model.model_validate(config).model_dump(mode="json")
    except ValidationError as exc:
        raise Invalid(
            f"config does not fit the {connector.name} connector",
            errors=_field_errors(exc, "body.config"),
        ) from exc


def validate_credentials(connector: type[Connector], credentials: dict[str, Any]) -> None:
    try:
        connector.credentials_model.model_validate(credentials)
    except ValidationError as exc:
        raise Invalid(
            f"credentials do not fit the {connector.name} connector",
            errors=_field_errors(exc, "body.credentials"),
        ) from exc


def addresses(config: Any) -> set[str]:
    """The origins (scheme://host:port) of every absolute URL anywhere in a link's config:
    where its connector will send the stored credentials."""
    if isinstance(config, dict):
        return set().union(*(addresses(value) for value in config.values()))
    if isinstance(config, list):
        return set().union(*(addresses(value) for value in config))
    if isinstance(config, str) and config.startswith(("http://", "https://")):
        parts = urlsplit(config)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # not a port number: the whole string stands for the address
            return {config}
        return {f"{parts.scheme}://{parts.hostname}:{port}"}
    return set()


def _seal(keyring: KeyRing, credentials: dict[str, Any] | None) -> str | None:
    if credentials is None:
        return None
    return keyring.encrypt(orjson.dumps(credentials))


async def _record(
    tx: Transaction,
    actor: WorkspacePrincipal,
    link: VendorLink,
    event: EventType,
    data: Payload | None = None,
) -> None:
    """A link change goes to the change log and to the audit log alike."""
    await events.record(
        tx,
        workspace_id=link.workspace_id,
        actor=actor.actor,
        events=[
            NewEvent(
                event,
                link.id,
                data or LinkState(status=link.status, connector=link.connector),
                vendor_id=link.vendor_id,
            )
        ],
    )
    await record_audit(
        tx,
        workspace_id=link.workspace_id,
        actor=actor.actor,
        action=event.value,
        target_type="link",
        target_id=link.id,
        details={"vendor_id": str(link.vendor_id), "connector": link.connector},
    )


@dataclass(frozen=True, slots=True)
class CreatedLink:
    link: VendorLink
    # The link's webhook signing secret, shown this once; None for a link that takes none.
    webhook_secret: str | None


async def create_link(
    tx: Transaction,
    *,
    actor: WorkspacePrincipal,
    keyring: KeyRing,
    vendor_id: uuid.UUID,
    connector: str,
    config: dict[str, Any],
    credentials: dict[str, Any] | None,
    check: LinkCheck,
    sync_interval_seconds: int = 900,
    full_resync_interval_seconds: int = 86400,
) -> CreatedLink:
    """Validate, check against the vendor (422 with its reason if it refuses), then save. A
    link whose vendor pushes webhooks gets its signing secret."""
    connector_class = _connector(connector)
    config = validated_config(connector_class, config)
    validate_credentials(connector_class, credentials or {})
    if await tx.session.get(Vendor, vendor_id) is None:
        raise Invalid(
            f"no vendor {vendor_id} in the catalog",
            errors=[{"field": "body.vendor_id", "message": "unknown vendor"}],
        )
    existing = await tx.session.scalar(
        select(VendorLink.id).where(
            VendorLink.workspace_id == actor.workspace_id, VendorLink.vendor_id == vendor_id
        )
    )
    if existing is not None:
        raise Conflict(f"this workspace already links vendor {vendor_id} (link {existing})")
    link_id = new_id()
    working = await check(
        connector=connector, config=config, credentials=credentials or {}, holder=link_id
    )
    if credentials is not None:
        credentials = working  # as the vendor left them: it may have rotated a refresh token
    secret = new_secret() if webhook_scheme(connector, config) is not None else None
    link = VendorLink(
        workspace_id=actor.workspace_id,
        id=link_id,
        vendor_id=vendor_id,
        connector=connector,
        config=config,
        credentials_encrypted=_seal(keyring, credentials),
        status=LinkStatus.ACTIVE.value,
        created_by=getattr(actor, "user_id", None),
        sync_interval_seconds=sync_interval_seconds,
        full_resync_interval_seconds=full_resync_interval_seconds,
        webhook_secret_encrypted=keyring.encrypt(secret.encode()) if secret else None,
    )
    tx.session.add(link)
    try:
        await tx.session.flush()
    except IntegrityError as exc:
        raise Conflict(f"this workspace already links vendor {vendor_id}") from exc
    await _record(tx, actor, link, EventType.LINK_CREATED)
    return CreatedLink(link, secret)


def _scoped(principal: Principal) -> Any:
    if isinstance(principal, VendorPrincipal):
        return VendorLink.vendor_id == principal.vendor_id
    return VendorLink.workspace_id == principal.workspace_id


LINK_COLUMNS = (
    "id, workspace_id, vendor_id, connector, config,"
    " credentials_encrypted IS NOT NULL AS has_credentials, status, sync_interval_seconds,"
    " full_resync_interval_seconds, next_sync_at, last_synced_at, last_full_sync_at,"
    " consecutive_failures, last_error, webhook_secret_encrypted IS NOT NULL AS has_webhook_secret,"
    " webhook_previous_secret_until, disclosed_lead_fields, disclosure_agreed_by,"
    " disclosure_agreed_at, created_at, updated_at"
)


async def list_links(
    tx: Transaction, *, principal: Principal, cursor: str | None, limit: int
) -> Page:
    """Oldest first; for a vendor key, the links to it in every workspace."""
    query = ListQuery.scoped(
        principal,
        kind="links",
        source="vendor_links",
        columns=LINK_COLUMNS,
        order=BY_ID,
        live_only=False,
    )
    return await query.page(tx, cursor=cursor, limit=limit)


async def get_link(
    tx: Transaction, *, principal: Principal, link_id: uuid.UUID, for_update: bool = False
) -> VendorLink:
    query = select(VendorLink).where(_scoped(principal), VendorLink.id == link_id)
    if for_update:
        query = query.with_for_update()
    link = await tx.session.scalar(query)
    if link is None:
        raise NotFound(f"no link {link_id}")
    return link


async def update_link(
    tx: Transaction,
    *,
    actor: WorkspacePrincipal,
    keyring: KeyRing,
    link_id: uuid.UUID,
    config: dict[str, Any] | None,
    credentials: dict[str, Any] | None,
    check: LinkCheck,
    sync_interval_seconds: int | None = None,
    full_resync_interval_seconds: int | None = None,
) -> VendorLink:
    """New config or credentials are checked against the vendor before they are saved; new
    credentials that work end ``needs_reauth``."""
    link = await get_link(tx, principal=actor, link_id=link_id, for_update=True)
    before = _tracked(link)
    connector_class = _connector(link.connector)
    if config is not None or credentials is not None:
        new_config = link.config if config is None else validated_config(connector_class, config)
        moved = sorted(addresses(new_config) - addresses(link.config))
        if moved and credentials is None and link.credentials_encrypted is not None:
            raise Invalid(
                f"this change sends the link's requests to {', '.join(moved)}; send the"
                " credentials again with it (stored secrets only ever go where they were"
                " entered for)",
                errors=[{"field": "body.credentials", "message": "required with a new address"}],
            )
        checked = credentials
        if credentials is not None:
            validate_credentials(connector_class, credentials)
        elif link.credentials_encrypted is not None:
            checked = orjson.loads(keyring.decrypt(link.credentials_encrypted))
        working = await check(
            connector=link.connector, config=new_config, credentials=checked or {}, holder=link.id
        )
        if checked is not None and working != checked:
            credentials = working  # rotated by the vendor during the check
        link.config = new_config
    if credentials is not None:
        link.credentials_encrypted = _seal(keyring, credentials)
        if link.status == LinkStatus.NEEDS_REAUTH:
            link.status = LinkStatus.ACTIVE.value
            link.consecutive_failures = 0
            link.last_error = None
            link.next_sync_at = utcnow()
    if sync_interval_seconds is not None:
        link.sync_interval_seconds = sync_interval_seconds
    if full_resync_interval_seconds is not None:
        link.full_resync_interval_seconds = full_resync_interval_seconds
    await tx.session.flush()
    after = _tracked(link)
    changed = {key: [before[key], after[key]] for key in after if before[key] != after[key]}
    data = LinkUpdated(
        status=link.status,
        connector=link.connector,
        changed=changed,
        secrets_replaced=credentials is not None,
    )
    await _record(tx, actor, link, EventType.LINK_UPDATED, data)
    return link


async def set_disclosure(
    tx: Transaction, *, actor: WorkspacePrincipal, link_id: uuid.UUID, lead_fields: list[str]
) -> VendorLink:
    """Which of the reseller's own fields on a lead the link's vendor may read besides the
    status, agreed by a person (recorded with who and when). The database applies it to
    every read the vendor makes (``vendor_leads``)."""
    unknown = sorted(set(lead_fields) - set(DISCLOSABLE_LEAD_FIELDS))
    if unknown:
        raise Invalid(
            f"no disclosable lead field {', '.join(unknown)}"
            f" (the choices: {', '.join(DISCLOSABLE_LEAD_FIELDS)})",
            errors=[{"field": "body.lead_fields", "message": "unknown field"}],
        )
    link = await get_link(tx, principal=actor, link_id=link_id, for_update=True)
    if not isinstance(actor, UserPrincipal):
        raise Forbidden(
            "what a vendor may read is agreed by a person: sign in as an owner or admin"
        )
    chosen = [field for field in DISCLOSABLE_LEAD_FIELDS if field in lead_fields]
    before = list(link.disclosed_lead_fields)
    link.disclosed_lead_fields = chosen
    link.disclosure_agreed_by = actor.user_id
    link.disclosure_agreed_at = utcnow()
    await tx.session.flush()
    data = LinkUpdated(
        status=link.status,
        connector=link.connector,
        changed={"disclosed_lead_fields": [before, chosen]} if before != chosen else {},
        secrets_replaced=False,
    )
    await _record(tx, actor, link, EventType.LINK_UPDATED, data)
    return link


def _tracked(link: VendorLink) -> dict[str, Any]:
    """What a link.updated event reports changes of (never the credentials themselves)."""
    return {
        "config": link.config,
        "status": link.status,
        "sync_interval_seconds": link.sync_interval_seconds,
        "full_resync_interval_seconds": link.full_resync_interval_seconds,
    }


async def set_link_status(
    tx: Transaction, *, actor: WorkspacePrincipal, link_id: uuid.UUID, status: LinkStatus
) -> VendorLink:
    link = await get_link(tx, principal=actor, link_id=link_id, for_update=True)
    if link.status == status:
        return link
    if status is LinkStatus.ACTIVE and link.status == LinkStatus.NEEDS_REAUTH:
        raise Conflict("the vendor rejected this link's credentials; update them to resume")
    resumed_from_pause = link.status == LinkStatus.PAUSED
    link.status = status.value
    await tx.session.flush()
    if resumed_from_pause:
        await webhooks.release_held(tx, workspace_id=link.workspace_id, link_id=link.id)
    event = EventType.LINK_PAUSED if status is LinkStatus.PAUSED else EventType.LINK_RESUMED
    await _record(tx, actor, link, event)
    return link


async def delete_link(tx: Transaction, *, actor: WorkspacePrincipal, link_id: uuid.UUID) -> None:
    link = await get_link(tx, principal=actor, link_id=link_id, for_update=True)
    await _record(tx, actor, link, EventType.LINK_DELETED)
    await tx.session.delete(link)
    await tx.session.flush()


@dataclass(frozen=True, slots=True)
class NewWebhookSecret:
    secret: str
    previous_valid_until: datetime | None


async def rotate_webhook_secret(
    tx: Transaction,
    *,
    actor: WorkspacePrincipal,
    keyring: KeyRing,
    link_id: uuid.UUID,
    overlap_seconds: int,
) -> NewWebhookSecret:
    """A new signing secret for the link's webhooks, shown once. The one it replaces keeps
    verifying for ``overlap_seconds`` while the vendor's side is changed over (0: it stops at
    once)."""
    link = await get_link(tx, principal=actor, link_id=link_id, for_update=True)
    if webhook_scheme(link.connector, link.config) is None:
        raise Conflict(
            f"link {link_id} takes no webhooks: its {link.connector} connector (or its"
            " manifest) declares none"
        )
    secret = new_secret()
    previous = link.webhook_secret_encrypted
    until = utcnow() + timedelta(seconds=overlap_seconds) if previous and overlap_seconds else None
    link.webhook_previous_secret_encrypted = previous if until else None
    link.webhook_previous_secret_until = until
    link.webhook_secret_encrypted = keyring.encrypt(secret.encode())
    await tx.session.flush()
    await record_audit(
        tx,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        action="link.webhook_secret_rotated" if previous else "link.webhook_secret_created",
        target_type="link",
        target_id=link.id,
        details={"previous_valid_until": until.isoformat() if until else None},
    )
    return NewWebhookSecret(secret, until)
