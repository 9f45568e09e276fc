"""generic_rest webhooks: a manifest's ``webhooks`` section, the signature scheme it names,
and the records found in a pushed body, mapped with the stream's own fields. Pure: no vendor,
no database."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from pane.connectors.generic_rest import GenericRest, GenericRestConfig
from pane.connectors.generic_rest.manifest import (
    HmacSha256Signature,
    StandardWebhooksSignature,
    Webhooks,
)
from pane.connectors.generic_rest.mapping import Mapper
from pane.connectors.records import LeadRecord, Page, Stream
from pane.connectors.webhooks import (
    HmacSha256,
    StandardWebhooks,
    WebhookUnreadable,
    new_secret,
)
from pane.demo.manifests import MANIFESTS, demo_link, load
from pane.demo.simulator.store import Lead, VendorData
from pane.demo.simulator.vendors import (
    ACME_STATUS,
    GLOBEX_STATUS,
    INITECH_STAGE,
    AcmeNetworks,
    GlobexSecurity,
    InitechCloud,
)
from tests.test_connector_generic_rest import _invalid, _manifest

# A vendor with European times, nested contacts and its own status words.
LEADS = {
    "fields": {
        "external_id": "ref",
        "email": "contact.email",
        "vendor_status": {
            "type": "map",
            "path": "status",
            "values": {"A": "accepted", "R": "rejected"},
            "unmapped": "fail",
        },
        "score": "rating",
        "updated_at": {"type": "datetime", "path": "modified", "format": "%d/%m/%Y %H:%M"},
    },
    "deleted_field": "archived",
}


def _lead(ref: str, **changes: Any) -> dict[str, Any]:
    return {
        "ref": ref,
        "contact": {"email": f"{ref.lower()}@atlas.example"},
        "status": "A",
        "rating": 80,
        "modified": "05/01/2026 09:30",
        "archived": False,
        **changes,
    }


def _config(webhooks: dict[str, Any] | None, **streams: Any) -> GenericRestConfig:
    manifest = _manifest(LEADS)
    manifest["streams"].update(streams)
    if webhooks is not None:
        manifest["webhooks"] = webhooks
    return GenericRestConfig.model_validate({"manifest": manifest})


def _hooked(*records: dict[str, Any], signature: dict[str, Any] | None = None) -> GenericRestConfig:
    webhooks: dict[str, Any] = {"records": list(records)}
    if signature is not None:
        webhooks["signature"] = signature
    return _config(webhooks)


def _pages(config: GenericRestConfig, body: Any) -> list[Page]:
    return GenericRest.webhook_pages(
        config, body if isinstance(body, bytes) else orjson.dumps(body)
    )


def _unreadable(config: GenericRestConfig, body: Any) -> str:
    with pytest.raises(WebhookUnreadable) as refused:
        _pages(config, body)
    return refused.value.reason


# --- the manifest section --------------------------------------------------------------------


def test_a_manifest_with_webhooks_parses_with_defaults_and_the_form_schema_shows_them():
    config = _hooked({"stream": "leads"})
    webhooks = config.manifest.webhooks
    assert isinstance(webhooks, Webhooks)
    assert webhooks.signature == StandardWebhooksSignature(tolerance_seconds=300)
    assert [(entry.stream, entry.path) for entry in webhooks.records] == [(Stream.LEADS, "")]
    assert _config(None).manifest.webhooks is None
    pasted = GenericRestConfig.model_validate(
        {
            "manifest": """
            base_url: https://api.vendor.example
            streams:
              leads: {path: leads, fields: {external_id: id}}
            webhooks:
              signature: {type: hmac_sha256, header: X-Hub-Signature-256, prefix: "sha256="}
              records:
                - {stream: leads, path: payload.leads}
            """
        }
    )
    assert pasted.manifest.webhooks is not None
    assert pasted.manifest.webhooks.signature == HmacSha256Signature(
        header="X-Hub-Signature-256", prefix="sha256="
    )

    described = GenericRest.describe()
    assert described["webhooks"] is True
    schema = described["config_schema"]
    json.dumps(schema)
    defs = schema["$defs"]
    assert {
        "Webhooks",
        "WebhookRecords",
        "StandardWebhooksSignature",
        "HmacSha256Signature",
    } <= set(defs)
    assert "webhooks" in defs["Manifest"]["properties"]
    assert "webhooks" not in defs["Manifest"].get("required", [])
    signature = defs["Webhooks"]["properties"]["signature"]
    assert signature["discriminator"]["mapping"] == {
        "standard_webhooks": "#/$defs/StandardWebhooksSignature",
        "hmac_sha256": "#/$defs/HmacSha256Signature",
    }
    assert defs["Webhooks"]["properties"]["records"]["minItems"] == 1
    tolerance = defs["StandardWebhooksSignature"]["properties"]["tolerance_seconds"]
    assert (tolerance["minimum"], tolerance["maximum"], tolerance["default"]) == (30, 3600, 300)
    assert defs["HmacSha256Signature"]["required"] == ["header"]
    assert defs["HmacSha256Signature"]["properties"]["encoding"]["enum"] == ["hex", "base64"]
    path = defs["WebhookRecords"]["properties"]["path"]
    assert "record object or a list of them" in path["description"]
    for model in ("Webhooks", "WebhookRecords", "StandardWebhooksSignature", "HmacSha256Signature"):
        assert defs[model]["description"]
        for name, field in defs[model]["properties"].items():
            assert name == "type" or field.get("description"), (model, name)


def test_webhook_mistakes_are_named():
    base = _manifest(LEADS)

    def invalid(webhooks: Any) -> str:
        return _invalid({**base, "webhooks": webhooks})

    undeclared = invalid({"records": [{"stream": "leads"}, {"stream": "deals", "path": "deal"}]})
    assert "webhooks.records.1.stream: the manifest has no deals stream" in undeclared
    assert "whose fields would map these records (it has: leads)" in undeclared
    assert "records.0" not in undeclared
    assert "manifest.webhooks.records.0.stream" in invalid({"records": [{"stream": "lead"}]})
    assert "at least 1 item" in invalid({"records": []})
    assert "manifest.webhooks.records" in invalid({})
    typo = invalid({"records": [{"stream": "leads", "paht": "data"}]})
    assert "manifest.webhooks.records.0.paht" in typo
    assert "Extra inputs are not permitted" in typo
    assert "pattern" in invalid({"records": [{"stream": "leads", "path": "data..lead"}]})
    records = [{"stream": "leads"}]
    kind = invalid({"signature": {"type": "svix"}, "records": records})
    assert "'standard_webhooks', 'hmac_sha256'" in kind
    for seconds in (10, 7200):
        tolerance = invalid(
            {
                "signature": {"type": "standard_webhooks", "tolerance_seconds": seconds},
                "records": records,
            }
        )
        assert "manifest.webhooks.signature.standard_webhooks.tolerance_seconds" in tolerance
    headless = invalid({"signature": {"type": "hmac_sha256"}, "records": records})
    assert "manifest.webhooks.signature.hmac_sha256.header" in headless
    assert "Field required" in headless
    spaced = invalid({"signature": {"type": "hmac_sha256", "header": "X Sig"}, "records": records})
    assert "manifest.webhooks.signature.hmac_sha256.header" in spaced
    encoded = invalid(
        {
            "signature": {"type": "hmac_sha256", "header": "X-Sig", "encoding": "b64"},
            "records": records,
        }
    )
    assert "'hex' or 'base64'" in encoded


# --- the signature scheme --------------------------------------------------------------------


def test_the_scheme_defaults_to_standard_webhooks_and_honours_hmac_settings():
    assert GenericRest.webhook_scheme(_config(None)) is None
    leads = {"stream": "leads"}
    assert GenericRest.webhook_scheme(_hooked(leads)) == StandardWebhooks(tolerance_seconds=300)
    assert GenericRest.webhook_scheme(
        _hooked(leads, signature={"type": "standard_webhooks", "tolerance_seconds": 60})
    ) == StandardWebhooks(tolerance_seconds=60)
    hmac = {
        "type": "hmac_sha256",
        "header": "X-Hub-Signature-256",
        "prefix": "sha256=",
        "encoding": "base64",
        "id_header": "X-Delivery",
    }
    scheme = GenericRest.webhook_scheme(_hooked(leads, signature=hmac))
    assert scheme == HmacSha256(
        header="X-Hub-Signature-256", prefix="sha256=", encoding="base64", id_header="X-Delivery"
    )
    plain = GenericRest.webhook_scheme(
        _hooked(leads, signature={"type": "hmac_sha256", "header": "X-Signature"})
    )
    assert plain == HmacSha256(header="X-Signature", prefix="", encoding="hex", id_header=None)
    # The settings make a scheme that works: what it signs, it verifies.
    assert scheme is not None
    secret, body = new_secret(), b'{"data": {}}'
    headers = scheme.sign(secret, body, webhook_id="d-1", timestamp=1_767_600_000)
    assert headers["x-hub-signature-256"].startswith("sha256=")
    verified = scheme.verify([secret], headers, body, now=1_767_600_000)
    assert verified.webhook_id == "d-1"


# --- records in a body -----------------------------------------------------------------------


def test_one_object_is_one_record_mapped_with_the_streams_own_fields():
    config = _hooked({"stream": "leads", "path": "data"})
    lead = _lead("L-1")
    pages = _pages(config, {"type": "lead.created", "data": lead})
    assert len(pages) == 1
    page = pages[0]
    assert (page.stream, page.cursor, page.failures) == (Stream.LEADS, None, [])
    [record] = page.records
    assert isinstance(record, LeadRecord)
    assert record.external_id == "L-1"
    assert record.email == "l-1@atlas.example"
    assert record.vendor_status == "accepted"
    assert record.score == 80
    assert record.updated_at == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    assert record.deleted is False
    assert record.raw == lead  # the record's own object, not the envelope


def test_a_list_at_a_nested_path_is_each_of_its_records():
    config = _hooked({"stream": "leads", "path": "payload.leads"})
    body = {
        "payload": {
            "leads": [
                _lead("L-1"),
                _lead("L-2", status="R", modified="06/01/2026 17:05"),
                _lead("L-3", contact={}),
            ]
        }
    }
    [page] = _pages(config, body)
    assert [(r.external_id, r.vendor_status) for r in page.records] == [
        ("L-1", "accepted"),
        ("L-2", "rejected"),
        ("L-3", "accepted"),
    ]
    leads = [r for r in page.records if isinstance(r, LeadRecord)]
    assert [r.email for r in leads] == ["l-1@atlas.example", "l-2@atlas.example", None]
    assert leads[1].updated_at == datetime(2026, 1, 6, 17, 5, tzinfo=UTC)
    assert _pages(config, {"payload": {"leads": []}}) == []
    # The body itself, when the path is empty: an object or a list.
    whole = _hooked({"stream": "leads"})
    assert [r.external_id for r in _pages(whole, _lead("L-9"))[0].records] == ["L-9"]
    both = _pages(whole, [_lead("L-8"), _lead("L-9")])
    assert [r.external_id for r in both[0].records] == ["L-8", "L-9"]


def test_a_record_that_does_not_fit_is_a_failure_in_its_page():
    config = _hooked({"stream": "leads", "path": "data"})
    unknown_word = _lead("L-2", status="X")
    bad_date = _lead("L-3", modified="2026-01-05")
    no_id = _lead("L-4")
    del no_id["ref"]
    body = {"data": [_lead("L-1"), unknown_word, bad_date, no_id, 7]}
    [page] = _pages(config, body)
    assert [r.external_id for r in page.records] == ["L-1"]
    assert len(page.failures) == 4
    assert page.failures[0].raw == unknown_word
    assert "vendor_status: 'X' is not one of A, R" in page.failures[0].reason
    assert "updated_at: '2026-01-05' is not a date and time like %d/%m/%Y %H:%M" in (
        page.failures[1].reason
    )
    assert page.failures[2].raw == no_id
    assert "external_id: Field required" in page.failures[2].reason
    assert page.failures[3].raw == 7
    assert "a record is a JSON object, not int" in page.failures[3].reason
    # Only failures is still a page: the engine keeps them for the link's log.
    [failed] = _pages(config, {"data": unknown_word})
    assert (failed.records, len(failed.failures)) == ([], 1)


def test_the_deleted_field_makes_a_tombstone():
    config = _hooked({"stream": "leads", "path": "data"})
    [page] = _pages(config, {"type": "lead.deleted", "data": _lead("L-1", archived=True)})
    [record] = page.records
    assert (record.external_id, record.deleted) == ("L-1", True)


def test_entries_of_one_stream_make_one_page_and_absent_ones_are_skipped():
    config = _hooked(
        {"stream": "leads", "path": "data.created"},
        {"stream": "leads", "path": "data.changed"},
    )
    body = {"data": {"created": _lead("L-1"), "changed": [_lead("L-2"), _lead("L-3")]}}
    pages = _pages(config, body)
    assert [page.stream for page in pages] == [Stream.LEADS]
    assert [r.external_id for r in pages[0].records] == ["L-1", "L-2", "L-3"]
    # A body with records for only some entries is read for those.
    [page] = _pages(config, {"data": {"changed": [_lead("L-2")]}})
    assert [r.external_id for r in page.records] == ["L-2"]
    reason = _unreadable(config, {"data": {"lead": _lead("L-1")}})
    assert reason == (
        "the body has nothing at 'data.created' or 'data.changed', where the manifest's "
        "webhooks.records look for records"
    )


def test_pages_of_several_streams_come_in_the_order_the_manifest_names_them():
    deals = {
        "path": "deals",
        "fields": {
            "external_id": "id",
            "customer": "customer",
            "amount": {"type": "money", "path": "amount"},
        },
    }
    config = _config(
        {"records": [{"stream": "deals", "path": "deal"}, {"stream": "leads", "path": "lead"}]},
        deals=deals,
    )
    body = {
        "lead": _lead("L-1"),
        "deal": {"id": "D-1", "customer": "Atlas Clinics", "amount": "1200.50"},
    }
    pages = _pages(config, body)
    assert [page.stream for page in pages] == [Stream.DEALS, Stream.LEADS]
    assert str(pages[0].records[0].model_dump()["amount"]) == "1200.50"
    [only_lead] = _pages(config, {"lead": _lead("L-2")})
    assert only_lead.stream is Stream.LEADS


def test_a_body_without_records_where_the_manifest_says_is_unreadable():
    config = _hooked({"stream": "leads", "path": "data.lead"})
    assert "the body is not JSON: unexpected end of data at line 1 column 10" in _unreadable(
        config, b'{"data": '
    )
    assert "the body is not JSON" in _unreadable(config, b"")
    assert "the body is not UTF-8 text (at byte offset 10)" in _unreadable(
        config, b'{"data": "\xff"}'
    )
    missing = _unreadable(config, {"data": {"deal": {}}})
    assert "the body has nothing at 'data.lead'" in missing
    assert "the body has nothing at 'data.lead'" in _unreadable(config, {"data": {"lead": None}})
    assert "the body has nothing at 'data.lead'" in _unreadable(config, [1, 2])
    number = _unreadable(config, {"data": {"lead": 42}})
    assert number == (
        "the body at 'data.lead' is a number, not a leads record (a JSON object) or a list of them"
    )
    assert "at 'data.lead' is a string" in _unreadable(config, {"data": {"lead": "L-1"}})
    assert "at 'data.lead' is a boolean" in _unreadable(config, {"data": {"lead": True}})
    whole = _hooked({"stream": "leads"})
    assert "the body as a whole is a number" in _unreadable(whole, 42)
    assert "the body as a whole is null" in _unreadable(whole, None)
    # A link whose manifest declares no webhooks takes none.
    assert "declares no webhooks" in _unreadable(_config(None), {"data": {}})


# --- the demo vendors ------------------------------------------------------------------------

SIMULATED = Lead(
    id="L-000042",
    first_name="Anna",
    last_name="Bauer",
    email="anna.bauer@atlas.example",
    phone="+49 30 555 0142",
    company="Atlas Clinics",
    title="CIO",
    country="DE",
    status=1,
    score=72,
    campaign="C-7",
    created_at=datetime(2026, 1, 5, 8, 12, tzinfo=UTC),
    updated_at=datetime(2026, 1, 6, 14, 47, tzinfo=UTC),
)


def _as_the_vendor_lists_it(slug: str, lead: Lead) -> dict[str, Any]:
    """The lead object the simulated vendor's API returns (its push carries the same)."""
    if slug == "acme":
        return AcmeNetworks.lead_json(lead)
    if slug == "globex":
        return GlobexSecurity(VendorData(prefix="G", seed=1), api_key="k").lead_json(lead)
    assert slug == "initech"
    return InitechCloud.lead_json(lead)


STATUS = {"acme": ACME_STATUS, "globex": GLOBEX_STATUS, "initech": INITECH_STAGE}
WITH_LEADS = [slug for slug in MANIFESTS if "leads" in load(slug)["streams"]]


def test_every_demo_vendor_with_leads_is_among_those_checked_below():
    assert WITH_LEADS == ["acme", "globex", "initech"]


@pytest.mark.parametrize("slug", WITH_LEADS)
def test_a_demo_vendors_pushed_lead_is_mapped_like_the_lead_it_lists(slug):
    config = GenericRestConfig.model_validate(demo_link(slug, "http://vendors.test")["config"])
    assert GenericRest.webhook_scheme(config) == StandardWebhooks()
    lead = _as_the_vendor_lists_it(slug, SIMULATED)
    [page] = _pages(config, {"type": "lead.created", "data": lead})
    assert (page.stream, page.failures, page.cursor) == (Stream.LEADS, [], None)
    [record] = page.records
    assert isinstance(record, LeadRecord)
    assert record.external_id == "L-000042"
    assert (record.first_name, record.last_name) == ("Anna", "Bauer")
    assert record.email == "anna.bauer@atlas.example"
    assert record.company == "Atlas Clinics"
    assert record.vendor_status == STATUS[slug][1]
    assert record.score == 72
    assert record.updated_at == datetime(2026, 1, 6, 14, 47, tzinfo=UTC)
    assert record.vendor_created_at == datetime(2026, 1, 5, 8, 12, tzinfo=UTC)
    assert record.deleted is False
    assert record.raw == lead
    # The same record a sync maps from the vendor's list.
    spec = config.manifest.streams[Stream.LEADS]
    assert Mapper(Stream.LEADS, spec).map_page([lead]).records == [record]

    gone = _as_the_vendor_lists_it(slug, replace(SIMULATED, deleted=True))
    [both] = _pages(config, {"type": "lead.updated", "data": [gone, lead]})
    assert [(r.external_id, r.deleted) for r in both.records] == [
        ("L-000042", True),
        ("L-000042", False),
    ]
