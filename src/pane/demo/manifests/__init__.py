"""Manifests for the simulated vendors, read by the ``generic_rest`` connector, and the links
a demo workspace makes to the simulator with them.

    link = demo_link("acme", "http://127.0.0.1:8900")
    # {"connector": "generic_rest", "config": {"manifest": {...}, "base_url": ...},
    #  "credentials": {"client_id": ..., "client_secret": ...}}
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import yaml

from pane.demo.simulator import DEMO_CREDENTIALS

MANIFESTS = ("acme", "globex", "initech")
# Northwind publishes a CSV file, read by the csv_price_list connector instead.
NORTHWIND_COLUMNS = {
    "sku": "Artikelnummer",
    "name": "Bezeichnung",
    "currency": "Waehrung",
    "list_price": "UVP",
    "partner_cost": "Haendlerpreis",
    "valid_from": "Gueltig ab",
}


def load(slug: str) -> dict[str, Any]:
    """The manifest of a simulated vendor, as a dict (what a link's config holds)."""
    if slug not in MANIFESTS:
        raise KeyError(f"no manifest for {slug!r} (there are: {', '.join(MANIFESTS)})")
    text = files(__package__).joinpath(f"{slug}.yaml").read_text(encoding="utf-8")
    manifest = yaml.safe_load(text)
    assert isinstance(manifest, dict)
    return manifest


def demo_link(slug: str, simulator_url: str) -> dict[str, Any]:
    """What ``POST /v1/links`` sends (besides ``vendor_id``) to link the simulated vendor
    ``slug`` served at ``simulator_url`` (e.g. ``http://127.0.0.1:8900``)."""
    root = simulator_url.rstrip("/")
    credentials = dict(DEMO_CREDENTIALS[slug])
    if slug == "northwind":
        config: dict[str, Any] = {
            "url": f"{root}/northwind/pricelist.csv",
            "delimiter": ";",
            "decimal_separator": ",",
            "thousands_separator": ".",
            "date_format": "%d.%m.%Y",
            "token_query_parameter": "token",
            "columns": dict(NORTHWIND_COLUMNS),
        }
        return {"connector": "csv_price_list", "config": config, "credentials": credentials}
    config = {"manifest": load(slug), "base_url": f"{root}/{slug}"}
    return {"connector": "generic_rest", "config": config, "credentials": credentials}


def demo_links(simulator_url: str) -> dict[str, dict[str, Any]]:
    """Every simulated vendor's link, by slug."""
    return {slug: demo_link(slug, simulator_url) for slug in DEMO_CREDENTIALS}


__all__ = ["MANIFESTS", "demo_link", "demo_links", "load"]
