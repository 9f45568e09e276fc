"""Each simulated vendor's data: deterministic from a seed, growing and changing over time.

Leads are kept twice: in insertion order (``leads``) and ordered by change, ``(updated_at, id)``,
for incremental reads. Serving a page is a bisection and a slice of that order, never a sort of
the whole list; the order is re-sorted only after leads moved (an almost sorted list, which
Python's sort handles in about linear time), and new leads simply append to it."""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import attrgetter

FIRST_NAMES = [
    "Anna",
    "Ben",
    "Chiara",
    "Dmitri",
    "Elif",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kaori",
    "Lena",
    "Marek",
    "Nora",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tereza",
]
LAST_NAMES = [
    "Andersson",
    "Bauer",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Horvat",
    "Iversen",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Olsen",
    "Petrov",
]
COMPANIES = [
    "Nordlicht Logistik",
    "Atlas Clinics",
    "Brightwater Schools",
    "Cobalt Insurance",
    "Delta Foods",
    "Evergreen Energy",
    "Falcon Legal",
    "Granite Manufacturing",
    "Harbor Hotels",
    "Iris Retail",
    "Juniper Health",
    "Kestrel Media",
]
TITLES = ["IT Manager", "CIO", "Head of Infrastructure", "Network Engineer", "CISO"]
COUNTRIES = ["DE", "AT", "CH", "FR", "NL", "SE", "DK", "PL", "ES", "IT"]
PRODUCTS = [
    ("FW-200", "Firewall 200 appliance", Decimal("1890.00")),
    ("FW-600", "Firewall 600 appliance", Decimal("5490.00")),
    ("SW-24P", "24-port PoE switch", Decimal("1299.00")),
    ("AP-6E", "Wi-Fi 6E access point", Decimal("449.00")),
    ("EDR-1Y", "Endpoint protection, 1 year", Decimal("39.00")),
    ("BKP-TB", "Cloud backup per TB, 1 year", Decimal("120.00")),
]


CHANGE_ORDER = attrgetter("updated_at", "id")
UPDATED_AT = attrgetter("updated_at")
ASSET_KINDS = [("datasheet", "en"), ("datasheet", "de"), ("presentation", "en"), ("video", "en")]


@dataclass(slots=True)
class Lead:
    id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    company: str
    title: str
    country: str
    status: int
    score: int
    campaign: str | None
    created_at: datetime
    updated_at: datetime
    deleted: bool = False


@dataclass(slots=True)
class Campaign:
    id: str
    name: str
    kind: str
    description: str
    starts: datetime
    ends: datetime
    products: list[str]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Asset:
    """A piece of collateral: a datasheet, a slide deck, a video."""

    id: str
    title: str
    kind: str
    language: str
    product: str
    path: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PriceLine:
    sku: str
    name: str
    currency: str
    list_price: Decimal
    partner_cost: Decimal
    valid_from: datetime


# What the vendor's own partner programme gives a reseller off list, by product line.
PARTNER_DISCOUNT = {"FW": Decimal("0.28"), "SW": Decimal("0.25"), "AP": Decimal("0.25")}
SOFTWARE_DISCOUNT = Decimal("0.35")
USD_PER_EUR = Decimal("1.08")
CENT = Decimal("0.01")


def price_list(currency: str) -> list[PriceLine]:
    """Every product in ``PRODUCTS`` at list price and partner cost, in EUR or USD."""
    if currency not in ("EUR", "USD"):
        raise ValueError(f"no price list in {currency}")
    lines = []
    for sku, name, eur in PRODUCTS:
        list_price = eur if currency == "EUR" else (eur * USD_PER_EUR).quantize(CENT)
        discount = PARTNER_DISCOUNT.get(sku.split("-")[0], SOFTWARE_DISCOUNT)
        cost = (list_price * (1 - discount)).quantize(CENT)
        valid_from = datetime(2026, 1, 1, tzinfo=UTC)
        lines.append(PriceLine(sku, name, currency, list_price, cost, valid_from))
    return lines


@dataclass(slots=True)
class VendorData:
    """Records in insertion order; ``updated_at`` only ever moves forward."""

    prefix: str
    seed: int
    leads: list[Lead] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)
    clock: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    _random: random.Random = field(init=False, repr=False)
    _by_change: list[Lead] = field(init=False, repr=False, default_factory=list)
    _moved: bool = field(init=False, repr=False, default=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - fixtures, not secrets
        self._by_change = sorted(self.leads, key=CHANGE_ORDER)

    def _tick(self, floor: datetime | None = None) -> datetime:
        if floor is None:
            floor = datetime.now(UTC) - timedelta(days=365)
        self.clock = max(self.clock + timedelta(seconds=1 + int(self._random.random() * 90)), floor)
        return self.clock

    def add_leads(self, count: int) -> list[Lead]:
        # Hot when seeding hundreds of thousands: draws are plain floats, strings are shared.
        draw = self._random.random
        floor = datetime.now(UTC) - timedelta(days=365)
        emails: dict[tuple[str, str, str], str] = {}
        campaigns = [campaign.id for campaign in self.campaigns]
        added = []
        for _ in range(count):
            number = len(self.leads) + 1
            first = FIRST_NAMES[int(draw() * len(FIRST_NAMES))]
            last = LAST_NAMES[int(draw() * len(LAST_NAMES))]
            company = COMPANIES[int(draw() * len(COMPANIES))]
            email = emails.get((first, last, company))
            if email is None:
                domain = company.lower().split()[0] + ".example"
                email = emails[(first, last, company)] = f"{first.lower()}.{last.lower()}@{domain}"
            stamp = self._tick(floor)
            lead = Lead(
                id=f"{self.prefix}-{number:07d}",
                first_name=first,
                last_name=last,
                email=email,
                phone=f"+49 30 {1000000 + int(draw() * 9000000)}",
                company=company,
                title=TITLES[int(draw() * len(TITLES))],
                country=COUNTRIES[int(draw() * len(COUNTRIES))],
                status=int(draw() * 4),
                score=5 + int(draw() * 95),
                campaign=campaigns[number % len(campaigns)]
                if campaigns and number % 3 == 0
                else None,
                created_at=stamp,
                updated_at=stamp,
            )
            self.leads.append(lead)
            # The clock only moves forward, so a new lead is the latest change: order holds.
            self._by_change.append(lead)
            added.append(lead)
        return added

    def change_leads(self, count: int) -> list[Lead]:
        """Move some leads on in the vendor's own pipeline (and so in their updated_at)."""
        live = [lead for lead in self.leads if not lead.deleted]
        moved = self._random.sample(live, min(count, len(live)))
        for lead in moved:
            lead.status = (lead.status + 1) % 4
            lead.updated_at = self._tick()
            self._moved = True
        return moved

    def delete_leads(self, count: int) -> list[Lead]:
        live = [lead for lead in self.leads if not lead.deleted]
        gone = self._random.sample(live, min(count, len(live)))
        for lead in gone:
            lead.deleted = True
            lead.updated_at = self._tick()
            self._moved = True
        return gone

    def add_campaigns(self, count: int) -> None:
        kinds = ["email", "webinar", "event", "social", "syndication"]
        for _ in range(count):
            number = len(self.campaigns) + 1
            start = self._tick()
            self.campaigns.append(
                Campaign(
                    id=f"{self.prefix}-C{number:04d}",
                    name=f"{self._random.choice(['Spring', 'Summer', 'Autumn', 'Winter'])} "
                    f"{self._random.choice(['Security', 'Campus Wi-Fi', 'Backup', 'Edge'])} "
                    f"push {number}",
                    kind=self._random.choice(kinds),
                    description="Ready-made partner campaign with emails, landing page and leads.",
                    starts=start,
                    ends=start + timedelta(days=self._random.randint(20, 90)),
                    products=[p[0] for p in self._random.sample(PRODUCTS, 2)],
                    updated_at=start,
                )
            )

    def add_assets(self) -> None:
        """Collateral for every product; deterministic, and draws nothing from the seed, so
        adding it leaves the leads as they were."""
        published = datetime(2025, 11, 3, 9, 0, tzinfo=UTC)
        for number, (sku, name, _) in enumerate(PRODUCTS):
            for variant, (kind, language) in enumerate(ASSET_KINDS):
                if kind == "video" and number % 2:
                    continue
                label = {"datasheet": "Datasheet", "presentation": "Sales deck", "video": "Demo"}
                extension = "mp4" if kind == "video" else "pdf"
                self.assets.append(
                    Asset(
                        id=f"{self.prefix}-A{len(self.assets) + 1:04d}",
                        title=f"{name}: {label[kind]}",
                        kind=kind,
                        language=language,
                        product=sku,
                        path=f"collateral/{sku.lower()}-{kind}-{language}.{extension}",
                        updated_at=published + timedelta(days=7 * number, hours=variant),
                    )
                )

    def by_change(self) -> list[Lead]:
        """Every lead (deleted ones included), oldest change first, ties by id. The list is
        the store's own: slice it, do not change it."""
        if self._moved:
            self._by_change.sort(key=CHANGE_ORDER)
            self._moved = False
        return self._by_change

    def first_changed_at_or_after(self, since: datetime | None) -> int:
        """The position in ``by_change()`` of the first lead updated at or after ``since``."""
        ordered = self.by_change()
        return 0 if since is None else bisect_left(ordered, since, key=UPDATED_AT)

    def first_after(self, updated_at: datetime, lead_id: str) -> int:
        """The position in ``by_change()`` just past the change ``(updated_at, lead_id)``."""
        return bisect_right(self.by_change(), (updated_at, lead_id), key=CHANGE_ORDER)

    def changed_since(self, since: datetime | None) -> list[Lead]:
        """Leads (deleted ones included) updated at or after ``since``, oldest change first."""
        return self.by_change()[self.first_changed_at_or_after(since) :]


def seeded(prefix: str, seed: int, *, leads: int, campaigns: int = 4) -> VendorData:
    data = VendorData(prefix=prefix, seed=seed)
    data.add_campaigns(campaigns)
    data.add_leads(leads)
    data.add_assets()
    return data
