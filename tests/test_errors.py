"""Bad input: every refusal is RFC 9457 problem+json with a stable type, never a 500, and every
response carries a request id."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from pane.app import create_app
from pane.services.lists import encode_cursor
from tests.conftest import make_settings
from tests.factories import PROBLEM, assert_problem, error_fields

SMALL_LIMIT = 2048


@pytest.fixture(scope="module")
async def workspace(api):
    owner = await api.signup()
    vendor = await api.new_vendor()
    link = await api.link(owner, vendor)
    return owner, vendor, link


@pytest.fixture
async def lead_setup(api, workspace):
    """The module's workspace and a fresh lead of its own (version 1, no notes)."""
    owner, vendor, link = workspace
    (lead_id,) = await api.seed_leads(owner.workspace_id, vendor, 1)
    return owner, vendor, link, lead_id


async def _lead(http, owner, lead_id) -> dict[str, Any]:
    response = await http.get(f"/v1/leads/{lead_id}", headers=owner.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- malformed and mistyped bodies ------------------------------------------------------------


@pytest.mark.parametrize(
    "content", [b'{"notes": ', b"{notes: 1}", b'{"notes": "x",}', b"\xff\xfe", b"nul"]
)
async def test_malformed_json_is_400(http, lead_setup, content):
    owner, _, _, lead_id = lead_setup
    response = await http.patch(
        f"/v1/leads/{lead_id}",
        content=content,
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    body = assert_problem(response, 400, "malformed-json")
    assert body["instance"] == f"/v1/leads/{lead_id}"
    assert (await _lead(http, owner, lead_id))["version"] == 1


async def test_malformed_json_on_create_and_unauthenticated_routes(http, lead_setup):
    owner = lead_setup[0]
    response = await http.post(
        "/v1/links",
        content=b'{"vendor_id": "',
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "malformed-json")
    response = await http.post(
        "/v1/auth/login", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400, "malformed-json")


async def test_unknown_field_is_named(http, lead_setup):
    owner, vendor, _, lead_id = lead_setup
    response = await http.patch(
        f"/v1/leads/{lead_id}", json={"notes": "hi", "colour": "red"}, headers=owner.headers
    )
    body = assert_problem(response, 422, "validation-error")
    assert error_fields(body) == ["body.colour"]
    assert "body.colour" in body["detail"]
    lead = await _lead(http, owner, lead_id)
    assert lead["notes"] is None
    assert lead["version"] == 1

    other = await http.post(
        "/v1/links",
        json={"vendor_id": str(vendor), "connector": "generic_rest", "secret_sauce": 1},
        headers=owner.headers,
    )
    body = assert_problem(other, 422, "validation-error")
    assert "body.secret_sauce" in error_fields(body)


async def test_wrong_types_list_every_field(http, lead_setup):
    owner, _, _, lead_id = lead_setup
    response = await http.patch(
        f"/v1/leads/{lead_id}",
        json={"status": "bogus", "owner_id": "not-a-uuid", "notes": 5},
        headers=owner.headers,
    )
    body = assert_problem(response, 422, "validation-error")
    assert sorted(error_fields(body)) == ["body.notes", "body.owner_id", "body.status"]
    assert (await _lead(http, owner, lead_id))["version"] == 1


@pytest.mark.parametrize("payload", [[], "notes", 3, None])
async def test_body_that_is_not_an_object_is_422(http, lead_setup, payload):
    owner, _, _, lead_id = lead_setup
    response = await http.patch(f"/v1/leads/{lead_id}", json=payload, headers=owner.headers)
    body = assert_problem(response, 422, "validation-error")
    assert all(field.startswith("body") for field in error_fields(body))


async def test_wrong_types_on_link_create(http, lead_setup):
    owner = lead_setup[0]
    response = await http.post(
        "/v1/links",
        json={"vendor_id": 42, "connector": ["x"], "config": "nope", "credentials": 7},
        headers=owner.headers,
    )
    body = assert_problem(response, 422, "validation-error")
    assert sorted(error_fields(body)) == [
        "body.config",
        "body.connector",
        "body.credentials",
        "body.vendor_id",
    ]


async def test_non_json_content_type_is_refused_without_500(http, lead_setup):
    owner, _, _, lead_id = lead_setup
    response = await http.patch(
        f"/v1/leads/{lead_id}",
        content=b"notes=hi",
        headers={**owner.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code in {415, 422}, response.text
    assert_problem(response, response.status_code)
    assert (await _lead(http, owner, lead_id))["version"] == 1


async def test_missing_body_is_422(http, lead_setup):
    owner, _, _, lead_id = lead_setup
    response = await http.patch(
        f"/v1/leads/{lead_id}", headers={**owner.headers, "Content-Type": "application/json"}
    )
    body = assert_problem(response, 422, "validation-error")
    assert error_fields(body) == ["body"]


# --- path and query parameters ----------------------------------------------------------------


@pytest.mark.parametrize("bad", ["not-a-uuid", "123", "0" * 33, "%20"])
async def test_bad_uuid_in_path_names_the_parameter(http, lead_setup, bad):
    owner = lead_setup[0]
    for method in ("GET", "PATCH"):
        response = await http.request(
            method,
            f"/v1/leads/{bad}",
            json={"notes": "x"} if method == "PATCH" else None,
            headers=owner.headers,
        )
        body = assert_problem(response, 422, "validation-error")
        assert error_fields(body) == ["path.lead_id"]
    response = await http.post(f"/v1/links/{bad}/pause", headers=owner.headers)
    assert error_fields(assert_problem(response, 422)) == ["path.link_id"]
    response = await http.get(f"/v1/vendors/{bad}", headers=owner.headers)
    assert error_fields(assert_problem(response, 422)) == ["path.vendor_id"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"vendor_id": "not-a-uuid"}, "query.vendor_id"),
        ({"status": "bogus"}, "query.status"),
        ({"updated_since": "yesterday"}, "query.updated_since"),
        ({"limit": "ten"}, "query.limit"),
        ({"limit": "-1"}, "query.limit"),
        ({"q": "x" * 101}, "query.q"),
        ({"cursor": "c" * 513}, "query.cursor"),
    ],
)
async def test_bad_query_parameters_are_named(http, lead_setup, params, field):
    owner = lead_setup[0]
    response = await http.get("/v1/leads", params=params, headers=owner.headers)
    body = assert_problem(response, 422, "validation-error")
    assert error_fields(body) == [field]


async def test_bad_query_parameters_on_other_lists(http, lead_setup):
    owner = lead_setup[0]
    response = await http.get("/v1/vendors", params={"kind": "reseller"}, headers=owner.headers)
    assert error_fields(assert_problem(response, 422)) == ["query.kind"]
    response = await http.get("/v1/links", params={"limit": 0}, headers=owner.headers)
    assert error_fields(assert_problem(response, 422)) == ["query.limit"]


EDGES_OF_THE_CALENDAR = [
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2027-01-01T00:00:00",
]


@pytest.mark.parametrize("instant", EDGES_OF_THE_CALENDAR)
async def test_instants_outside_utc_are_422_in_queries_and_bodies(http, lead_setup, instant):
    """Valid ISO 8601 that PostgreSQL cannot hold (the year 10000 or 0 in UTC), or without an
    offset, is named as the bad field, never a 500."""
    owner = lead_setup[0]
    response = await http.get("/v1/leads", params={"updated_since": instant}, headers=owner.headers)
    assert error_fields(assert_problem(response, 422)) == ["query.updated_since"]
    response = await http.post(
        "/v1/api-keys",
        json={"name": "crm", "scopes": ["leads:read"], "expires_at": instant},
        headers=owner.headers,
    )
    assert error_fields(assert_problem(response, 422)) == ["body.expires_at"]


@pytest.mark.parametrize("instant", EDGES_OF_THE_CALENDAR)
async def test_instants_outside_utc_inside_a_cursor_are_400(http, lead_setup, instant):
    owner = lead_setup[0]
    forged = encode_cursor("members", [instant, str(owner.user_id)])
    response = await http.get("/v1/members", params={"cursor": forged}, headers=owner.headers)
    assert_problem(response, 400, "bad-cursor")


@pytest.mark.parametrize("q", ["\x00", "a\x00b"])
async def test_nul_in_search_is_not_a_500(http, lead_setup, q):
    owner = lead_setup[0]
    response = await http.get("/v1/leads", params={"q": q}, headers=owner.headers)
    if response.status_code == 200:
        assert response.json()["items"] == []
    else:
        assert_problem(response, 422)


async def test_nul_in_lead_notes_is_not_a_500(http, lead_setup):
    owner, _, _, lead_id = lead_setup
    response = await http.patch(
        f"/v1/leads/{lead_id}", json={"notes": "a\x00b"}, headers=owner.headers
    )
    assert_problem(response, 422)
    assert (await _lead(http, owner, lead_id))["version"] == 1


async def test_nul_in_link_config_is_not_a_500(http, lead_setup):
    owner, _, link, _ = lead_setup
    response = await http.patch(
        f"/v1/links/{link['id']}", json={"config": {"k": "a\x00b"}}, headers=owner.headers
    )
    assert_problem(response, 422)
    current = await http.get(f"/v1/links/{link['id']}", headers=owner.headers)
    assert current.json()["config"] == link["config"]


# --- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/nope", f"/v1/leads/{uuid.uuid4()}/nope", "/"])
async def test_unknown_route_is_404_problem(http, lead_setup, path):
    owner = lead_setup[0]
    response = await http.get(path, headers=owner.headers)
    body = assert_problem(response, 404, "not-found")
    assert body["instance"] == path


async def test_unknown_route_without_auth_is_404_problem(http):
    response = await http.post("/v1/definitely/not/here", json={})
    body = assert_problem(response, 404, "not-found")
    assert "/v1/definitely/not/here" in body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/leads", {"GET"}),
        ("PUT", "/v1/leads/{id}", {"GET", "PATCH"}),
        ("POST", "/v1/vendors", {"GET"}),
        ("GET", "/v1/links/{id}/pause", {"POST"}),
    ],
)
async def test_wrong_method_is_405_problem(http, lead_setup, method, path, allowed):
    owner, _, link, lead_id = lead_setup
    path = path.format(id=lead_id if "leads" in path else link["id"])
    response = await http.request(method, path, headers=owner.headers)
    assert_problem(response, 405, "method-not-allowed")
    advertised = {part.strip() for part in response.headers["allow"].split(",")}
    assert method not in advertised
    assert advertised & allowed


async def test_missing_credentials_is_401_problem(http, lead_setup):
    lead_id = lead_setup[3]
    response = await http.get(f"/v1/leads/{lead_id}")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = await http.get("/v1/leads", headers={"Authorization": "Bearer garbage"})
    assert_problem(response, 401, "unauthorized")


# --- body size limit --------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def small_http(servers, settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app that takes at most 2 KiB of body, on the same database and keys as the main one."""
    small = make_settings(
        servers,
        max_body_bytes=SMALL_LIMIT,
        credential_keys=[key.get_secret_value() for key in settings.credential_keys],
    )
    application = create_app(small)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pane.test") as client:
            yield client


def _notes(size: int) -> bytes:
    body = b'{"notes": "' + b"n" * size + b'"}'
    return body


async def test_body_under_the_limit_is_accepted(small_http, http, lead_setup):
    owner, _, _, lead_id = lead_setup
    content = _notes(SMALL_LIMIT - 20)
    assert len(content) <= SMALL_LIMIT
    response = await small_http.patch(
        f"/v1/leads/{lead_id}",
        content=content,
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert (await _lead(http, owner, lead_id))["notes"] == "n" * (SMALL_LIMIT - 20)


async def test_oversize_body_with_content_length_is_413(small_http, http, lead_setup):
    owner, _, _, lead_id = lead_setup
    content = _notes(SMALL_LIMIT)
    response = await small_http.patch(
        f"/v1/leads/{lead_id}",
        content=content,
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert response.request.headers["content-length"] == str(len(content))
    body = assert_problem(response, 413, "payload-too-large")
    assert str(SMALL_LIMIT) in body["detail"]
    assert (await _lead(http, owner, lead_id))["version"] == 1


async def test_oversize_streamed_body_is_413(small_http, http, lead_setup):
    owner, _, _, lead_id = lead_setup
    chunks_sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        yield b'{"notes": "'
        for _ in range(10):
            chunks_sent += 1
            yield b"s" * 512
        yield b'"}'

    response = await small_http.patch(
        f"/v1/leads/{lead_id}",
        content=stream(),
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    body = assert_problem(response, 413, "payload-too-large")
    assert str(SMALL_LIMIT) in body["detail"]
    assert chunks_sent >= 4
    lead = await _lead(http, owner, lead_id)
    assert lead["version"] == 1
    assert lead["notes"] is None


async def test_small_streamed_body_is_accepted(small_http, http, lead_setup):
    owner, _, _, lead_id = lead_setup

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"notes": '
        yield b'"streamed"}'

    response = await small_http.patch(
        f"/v1/leads/{lead_id}",
        content=stream(),
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert (await _lead(http, owner, lead_id))["notes"] == "streamed"


async def test_oversize_body_is_refused_before_authentication(small_http):
    response = await small_http.post(
        "/v1/auth/login", content=b"{" + b" " * (SMALL_LIMIT * 2) + b"}"
    )
    assert_problem(response, 413, "payload-too-large")


# --- request ids ------------------------------------------------------------------------------


async def test_every_response_has_a_request_id(http, lead_setup):
    owner = lead_setup[0]
    first = await http.get("/v1/leads", headers=owner.headers)
    second = await http.get("/v1/leads", headers=owner.headers)
    missing = await http.get("/v1/nope")
    ids = [r.headers.get("x-request-id") for r in (first, second, missing)]
    assert all(ids)
    assert len(set(ids)) == 3
    for value in ids:
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,128}", value)


@pytest.mark.parametrize("path", ["/v1/leads", "/v1/nope", "/v1/leads/not-a-uuid"])
async def test_valid_incoming_request_id_is_echoed(http, lead_setup, path):
    owner = lead_setup[0]
    incoming = f"crm-{uuid.uuid4().hex}.retry_1"
    response = await http.get(path, headers={**owner.headers, "X-Request-Id": incoming})
    assert response.headers["x-request-id"] == incoming
    assert response.headers.get_list("x-request-id") == [incoming]


async def test_request_id_is_echoed_on_413(small_http):
    incoming = "big-upload-1"
    response = await small_http.post(
        "/v1/auth/login",
        content=b"x" * (SMALL_LIMIT + 1),
        headers={"X-Request-Id": incoming},
    )
    assert_problem(response, 413)
    assert response.headers["x-request-id"] == incoming


@pytest.mark.parametrize("incoming", ["has spaces", "x" * 129, "semi;colon", "<script>"])
async def test_invalid_incoming_request_id_is_replaced(http, incoming):
    response = await http.get("/healthz", headers={"X-Request-Id": incoming})
    assert response.status_code == 200
    generated = response.headers["x-request-id"]
    assert generated != incoming
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,128}", generated)


async def test_unexpected_error_is_a_500_problem_with_the_request_id(app, api, monkeypatch):
    """A crash is answered as problem+json that leaks nothing, and still carries the request id
    the operator needs to find its log line."""
    owner = await api.signup()

    async def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals: connection string postgres://x")

    monkeypatch.setattr("pane.services.leads.list_leads", crash)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://pane.test") as client:
        response = await client.get(
            "/v1/leads", headers={**owner.headers, "X-Request-Id": "crash-1"}
        )
    assert response.status_code == 500
    assert response.headers["content-type"].split(";")[0] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:pane:problem:internal-error"
    assert body["status"] == 500
    assert "secret internals" not in response.text
    assert response.headers.get("x-request-id") == "crash-1"
