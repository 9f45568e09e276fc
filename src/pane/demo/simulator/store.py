"""Each simulated vendor's data: deterministic from a seed, growing and changing over time."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

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


@dataclass
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


@dataclass
class Campaign:
    id: str
    name: str
    kind: str
    description: str
    starts: datetime
    ends: datetime
    products: list[str]
    updated_at: datetime


@dataclass
class VendorData:
    """Records in insertion order; ``updated_at`` only ever moves forward."""

    prefix: str
    seed: int
    leads: list[Lead] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)
    clock: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 8, 0, tzinfo=UTC))

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - fixtures, not secrets

    def _tick(self) -> datetime:
        self.clock = max(
            self.clock + timedelta(seconds=self._random.randint(1, 90)),
            datetime.now(UTC) - timedelta(days=365),
        )
        return self.clock

    def add_leads(self, count: int) -> list[Lead]:
        added = []
        for _ in range(count):
            number = len(self.leads) + 1
            first = self._random.choice(FIRST_NAMES)
            last = self._random.choice(LAST_NAMES)
            company = self._random.choice(COMPANIES)
            domain = company.lower().split()[0] + ".example"
            stamp = self._tick()
            lead = Lead(
                id=f"{self.prefix}-{number:07d}",
                first_name=first,
                last_name=last,
                email=f"{first.lower()}.{last.lower()}@{domain}",
                phone=f"+49 30 {self._random.randint(1000000, 9999999)}",
                company=company,
                title=self._random.choice(TITLES),
                country=self._random.choice(COUNTRIES),
                status=self._random.randint(0, 3),
                score=self._random.randint(5, 99),
                campaign=self.campaigns[number % len(self.campaigns)].id
                if self.campaigns and number % 3 == 0
                else None,
                created_at=stamp,
                updated_at=stamp,
            )
            self.leads.append(lead)
            added.append(lead)
        return added

    def change_leads(self, count: int) -> None:
        """Move some leads on in the vendor's own pipeline (and so in their updated_at)."""
        live = [lead for lead in self.leads if not lead.deleted]
        for lead in self._random.sample(live, min(count, len(live))):
            lead.status = (lead.status + 1) % 4
            lead.updated_at = self._tick()

    def delete_leads(self, count: int) -> list[Lead]:
        live = [lead for lead in self.leads if not lead.deleted]
        gone = self._random.sample(live, min(count, len(live)))
        for lead in gone:
            lead.deleted = True
            lead.updated_at = self._tick()
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

    def changed_since(self, since: datetime | None) -> list[Lead]:
        """Leads (deleted ones included) updated at or after ``since``, oldest change first."""
        found = self.leads if since is None else [x for x in self.leads if x.updated_at >= since]
        return sorted(found, key=lambda lead: (lead.updated_at, lead.id))


def seeded(prefix: str, seed: int, *, leads: int, campaigns: int = 4) -> VendorData:
    data = VendorData(prefix=prefix, seed=seed)
    data.add_campaigns(campaigns)
    data.add_leads(leads)
    return data
