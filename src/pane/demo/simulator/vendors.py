"""Four fictional vendors that differ the way real partner APIs do.

| vendor | auth | pagination | shape | streams |
|---|---|---|---|---|
| Acme Networks | OAuth2 client credentials | opaque cursor token | camelCase, ISO 8601 | leads, campaigns, price list (USD/EUR), assets |
| Globex Security | API key header | page number | snake_case, `DD/MM/YYYY HH:MM` | leads, campaigns, assets |
| Initech Cloud | HTTP basic | offset + `Link: rel="next"` | nested objects, epoch seconds; flaky | leads, campaigns |
| Northwind Distribution | token in query | one CSV file | `;`-separated, decimal comma | price list |
"""  # noqa: E501 - a table

from pane.demo.simulator.acme import ACME_STATUS, AcmeNetworks
from pane.demo.simulator.globex import GLOBEX_STATUS, GlobexSecurity
from pane.demo.simulator.initech import INITECH_STAGE, InitechCloud
from pane.demo.simulator.northwind import NorthwindDistribution

__all__ = [
    "ACME_STATUS",
    "GLOBEX_STATUS",
    "INITECH_STAGE",
    "AcmeNetworks",
    "GlobexSecurity",
    "InitechCloud",
    "NorthwindDistribution",
]
