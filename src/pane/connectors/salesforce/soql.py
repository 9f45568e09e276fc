"""The SOQL pane sends: one query per stream, incremental by ``SystemModstamp``.

Every identifier in a query comes from code or from a config field validated as an API name,
and the only values ever written into one are a timestamp pane formats itself and a price
book id validated as letters and digits, so nothing a link is configured with or a cursor
holds can change a query's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pane.connectors.records import Stream
from pane.connectors.salesforce.config import SalesforceConfig

STAMP = "SystemModstamp"


def datetime_literal(moment: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC, whole seconds): ``2026-01-05T08:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_cursor(cursor: str | None) -> datetime | None:
    if not cursor:
        return None
    try:
        moment = datetime.fromisoformat(cursor)
    except ValueError as exc:
        raise ValueError(f"the cursor {cursor!r} is not a timestamp") from exc
    if moment.tzinfo is None:
        raise ValueError(f"the cursor {cursor!r} has no time zone")
    return moment


@dataclass(frozen=True, slots=True)
class Query:
    sobject: str
    fields: tuple[str, ...]
    where: tuple[str, ...] = ()

    def soql(self, since: datetime | None = None, *, limit: int | None = None) -> str:
        """Rows changed at or after ``since`` (a small overlap is re-read: pane upserts), in
        the order of their ``SystemModstamp`` so the cursor can follow them page by page."""
        conditions = list(self.where)
        if since is not None:
            conditions.append(f"{STAMP} >= {datetime_literal(since)}")
        # Identifiers only, all validated API names (see the module docstring).
        text = f"SELECT {', '.join(self.fields)} FROM {self.sobject}"  # noqa: S608
        if conditions:
            text += f" WHERE {' AND '.join(conditions)}"
        text += f" ORDER BY {STAMP}, Id"
        if limit is not None:
            text += f" LIMIT {int(limit)}"
        return text


def _unique(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for group in groups for name in group))


COMMON = ("Id", "IsDeleted", STAMP)


def queries(config: SalesforceConfig) -> dict[Stream, Query]:
    currency = ("CurrencyIsoCode",) if config.multi_currency else ()
    lead = Query(
        "Lead",
        _unique(
            COMMON,
            (
                "FirstName",
                "LastName",
                "Email",
                "Phone",
                "Company",
                "Title",
                "Country",
                "Status",
                "LeadSource",
                "CreatedDate",
            ),
        ),
    )
    campaign = Query(
        "Campaign",
        _unique(
            COMMON,
            ("Name", "Description", "Type", "Status", "StartDate", "EndDate", "IsActive"),
        ),
    )
    book = (
        f"Pricebook2Id = '{config.pricebook_id}'"
        if config.pricebook_id
        else "Pricebook2.IsStandard = true"
    )
    cost = (config.partner_cost_field,) if config.partner_cost_field else ()
    price_entry = Query(
        "PricebookEntry",
        _unique(
            COMMON,
            (
                "Pricebook2Id",
                "Product2Id",
                "Product2.ProductCode",
                "Product2.Name",
                "UnitPrice",
                "IsActive",
            ),
            currency,
            cost,
        ),
        where=(book,),
    )
    deal_fields = tuple(
        name for name in config.deal_fields.model_dump().values() if name is not None
    )
    deal = Query(config.deal_object, _unique(COMMON, ("Name",), deal_fields, currency))
    return {
        Stream.LEADS: lead,
        Stream.CAMPAIGNS: campaign,
        Stream.PRICE_LISTS: price_entry,
        Stream.DEALS: deal,
    }
