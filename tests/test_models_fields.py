"""A normalized field is declared in three places — the connector SDK's records, the ORM models
and the API's response schemas — so they are compared here: each record field is a column that
can hold it, each response field a column whose values it can show. The models' annotations are
held to their columns' types first, and the columns to the database by ``test_models_schema``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from enum import StrEnum
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import pytest
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import ARRAY, JSON, Column, Integer
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pane.api.content import AssetOut, CampaignOut, PriceItemOut
from pane.api.schemas import (
    ApiKeyOut,
    AuditOut,
    InvitationOut,
    LeadDetail,
    LeadOut,
    LinkOut,
    SyncRunOut,
    UserOut,
    VendorOut,
    WebhookDeliveryOut,
)
from pane.connectors.records import (
    AssetRecord,
    CampaignRecord,
    DealRecord,
    LeadRecord,
    PriceItemRecord,
    Record,
)
from pane.models import (
    ApiKey,
    Asset,
    AuditEntry,
    Base,
    Campaign,
    Deal,
    Invitation,
    Lead,
    PriceItem,
    SyncRun,
    User,
    Vendor,
    VendorLink,
    WebhookDelivery,
)

Shape = tuple[str, bool]  # the kind of value, and whether it may be None


def _kind(annotation: Any) -> str:
    if get_origin(annotation) is Annotated:
        return _kind(get_args(annotation)[0])
    if get_origin(annotation) in (list, dict):
        inner = ", ".join(_kind(arg) for arg in get_args(annotation))
        return f"{get_origin(annotation).__name__}[{inner}]"
    if annotation is AwareDatetime:
        return "datetime"
    if annotation is Any:
        return "Any"
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return "str"  # stored and shown as its value
    return str(annotation.__name__)


def _shape(annotation: Any) -> Shape:
    if get_origin(annotation) is Mapped:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, UnionType):
        present = [arg for arg in get_args(annotation) if arg is not NoneType]
        assert len(present) == 1, annotation
        return _kind(present[0]), True
    return _kind(annotation), False


def _column_kind(column: Column[Any]) -> str:
    if isinstance(column.type, ARRAY):
        return f"list[{column.type.item_type.python_type.__name__}]"
    return column.type.python_type.__name__


def _columns(model: type[DeclarativeBase]) -> dict[str, Shape]:
    hints = get_type_hints(model)
    return {column.key: _shape(hints[column.key]) for column in model.__table__.columns}


MODELS = sorted(
    (mapper.class_ for mapper in Base.registry.mappers), key=lambda model: model.__name__
)


async def test_every_table_has_a_model(admin_db) -> None:
    migrated = {
        row["tablename"]
        for row in await admin_db.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'alembic_version'"
        )
    }
    assert {model.__tablename__ for model in MODELS} == migrated
    assert len(migrated) == 22


def _annotation_problems(model: type[DeclarativeBase]) -> list[str]:
    problems = []
    for column in model.__table__.columns:
        kind, nullable = _columns(model)[column.key]
        if isinstance(column.type, JSON):
            expected = kind if kind.startswith(("dict[", "list[")) else "dict or list"
        else:
            expected = _column_kind(column)
        if kind != expected:
            problems.append(f"{model.__name__}.{column.key} is {kind}, its column holds {expected}")
        if nullable != column.nullable:
            problems.append(
                f"{model.__name__}.{column.key}: None {'allowed' if nullable else 'refused'}, "
                f"column {'' if column.nullable else 'NOT '}NULL"
            )
    return problems


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_each_models_annotations_say_what_its_columns_hold(model: type[Base]) -> None:
    assert _annotation_problems(model) == []


class _Elsewhere(DeclarativeBase):  # not pane's metadata, which alembic compares
    type_annotation_map = Base.type_annotation_map


class _Misdeclared(_Elsewhere):
    __tablename__ = "misdeclared"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    count: Mapped[str] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(nullable=True)


def test_the_annotation_comparison_notices_a_model_that_says_otherwise() -> None:
    assert _annotation_problems(_Misdeclared) == [
        "_Misdeclared.count is str, its column holds int",
        "_Misdeclared.note: None refused, column NULL",
    ]


# --------------------------------------------------------------------------------------------
# Connector records → the tables sync writes them to

# Everywhere: the vendor's ``updated_at`` lands in ``vendor_updated_at``; ``deleted`` is no
# value but a tombstone (``deleted_at`` is set).
RECORD_COLUMNS = {"updated_at": "vendor_updated_at"}
RECORDS: list[tuple[type[Record], type[Base], Mapping[str, str | None]]] = [
    (LeadRecord, Lead, {}),
    (CampaignRecord, Campaign, {}),
    (PriceItemRecord, PriceItem, {}),
    (AssetRecord, Asset, {}),
    (DealRecord, Deal, {"status": "vendor_status"}),
]


def _record_problems(
    record: type[Record], model: type[Base], columns: Mapping[str, str | None]
) -> list[str]:
    """A record field without a column, or with a column that cannot hold its values."""
    names = {**RECORD_COLUMNS, "deleted": None, **columns}
    shapes = _columns(model)
    problems = []
    for field, info in record.model_fields.items():
        column = names.get(field, field)
        if column is None:
            continue
        if column not in shapes:
            problems.append(f"{record.__name__}.{field}: {model.__tablename__} has no {column}")
            continue
        kind, nullable = _shape(info.annotation)
        column_kind, column_nullable = shapes[column]
        if kind != column_kind:
            problems.append(f"{record.__name__}.{field} is {kind}, {column} holds {column_kind}")
        if nullable and not column_nullable:
            problems.append(f"{record.__name__}.{field} may be None, {column} is NOT NULL")
    return problems


@pytest.mark.parametrize(
    ("record", "model", "columns"), RECORDS, ids=[record.__name__ for record, *_ in RECORDS]
)
def test_each_record_field_has_a_column_that_holds_it(
    record: type[Record], model: type[Base], columns: Mapping[str, str | None]
) -> None:
    assert _record_problems(record, model, columns) == []


class _NewField(DealRecord):
    budget: int | None = None


class _OptionalField(AssetRecord):
    url: str | None = None


class _OtherKind(CampaignRecord):
    starts_on: str | None = None


def test_the_record_comparison_notices_a_field_the_table_cannot_take() -> None:
    assert _record_problems(_NewField, Deal, {"status": "vendor_status"}) == [
        "_NewField.budget: deals has no budget"
    ]
    assert _record_problems(_OptionalField, Asset, {}) == [
        "_OptionalField.url may be None, url is NOT NULL"
    ]
    assert _record_problems(_OtherKind, Campaign, {}) == [
        "_OtherKind.starts_on is str, starts_on holds date"
    ]


# --------------------------------------------------------------------------------------------
# API responses ← the tables they show

# Response fields that are not columns, and the column each is worked out from.
COMPUTED = {
    (LinkOut, "has_credentials"): "credentials_encrypted",
    (LinkOut, "has_webhook_secret"): "webhook_secret_encrypted",
}
RESPONSES: list[tuple[type[BaseModel], type[Base]]] = [
    (LeadOut, Lead),
    (LeadDetail, Lead),
    (CampaignOut, Campaign),
    (PriceItemOut, PriceItem),
    (AssetOut, Asset),
    (LinkOut, VendorLink),
    (SyncRunOut, SyncRun),
    (ApiKeyOut, ApiKey),
    (VendorOut, Vendor),
    (AuditOut, AuditEntry),
    (InvitationOut, Invitation),
    (UserOut, User),
    (WebhookDeliveryOut, WebhookDelivery),
]


def _response_problems(response: type[BaseModel], model: type[Base]) -> list[str]:
    """A response field that is no column, or that promises a value its column may lack."""
    shapes = _columns(model)
    problems = []
    for field, info in response.model_fields.items():
        if (response, field) in COMPUTED:
            if COMPUTED[response, field] not in shapes:
                problems.append(f"{response.__name__}.{field} comes from a column that is gone")
            continue
        if field not in shapes:
            problems.append(f"{response.__name__}.{field}: {model.__tablename__} has no {field}")
            continue
        kind, nullable = _shape(info.annotation)
        column_kind, column_nullable = shapes[field]
        if kind != column_kind:
            problems.append(
                f"{response.__name__}.{field} is {kind}, its column holds {column_kind}"
            )
        if column_nullable and not nullable:
            problems.append(f"{response.__name__}.{field} is never null, the column may be")
    return problems


@pytest.mark.parametrize(
    ("response", "model"), RESPONSES, ids=[response.__name__ for response, _ in RESPONSES]
)
def test_each_response_field_shows_a_column(response: type[BaseModel], model: type[Base]) -> None:
    assert _response_problems(response, model) == []


class _NotNull(AssetOut):
    kind: str


class _Invented(SyncRunOut):
    duration_seconds: float


class _OtherType(CampaignOut):
    activated_by: str | None


def test_the_response_comparison_notices_what_a_column_cannot_give() -> None:
    assert _response_problems(_NotNull, Asset) == ["_NotNull.kind is never null, the column may be"]
    assert _response_problems(_Invented, SyncRun) == [
        "_Invented.duration_seconds: sync_runs has no duration_seconds"
    ]
    assert _response_problems(_OtherType, Campaign) == [
        "_OtherType.activated_by is str, its column holds UUID"
    ]
