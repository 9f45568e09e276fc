"""The OpenAPI document is a contract. Schemathesis sends every operation in it, with valid and
invalid requests, and checks each response, errors included, against the document: status,
content type, headers, body schema, and whether a valid request was accepted and an invalid one
refused.

Exceptions, where only the server can judge a schema-valid value (tests/contract_hooks.py
drops exactly these, and schemathesis.toml configures generation):
- any list's `cursor` is opaque: only cursors a list handed out are valid (400 bad-cursor);
- `POST /v1/api-keys`: `expires_at` must be in the future (the clock's to judge);
- `POST /v1/links`, `PATCH /v1/links/{link_id}`: the connector must be installed, the config
  fit its own schema, and the vendor accept config and credentials in a live check;
- `POST /v1/links/{link_id}/sync`: only the streams the link's connector reads;
- `PATCH /v1/leads/{lead_id}`: `owner_id` must be a member, a rejected lead needs a
  `status_reason` (422), and `If-Match` must name the lead's current version (412);
- schemathesis 4.32.5 labels some coverage cases positive whose header it drew negative;
- generation: no NUL characters (bodies refuse them, which free-form objects cannot declare),
  emails on a normal domain (email-validator refuses special-use ones such as `.test`), and
  the live change stream, which never ends, is read for a quarter of a second.

The document is the committed openapi/openapi.json (`pane openapi --check` keeps it equal to
the code's), so the operations are known at collection. Schemathesis calls the ASGI app from a
thread with an event loop of its own, in which it also runs the app's lifespan: the app under
test is an instance of its own, sharing nothing with the session loop but the servers."""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import settings as hypothesis_settings
from schemathesis.python import asgi
from starlette.types import ASGIApp, Receive, Scope, Send

from pane.api.schemas import NOT_BLANK
from pane.app import create_app
from pane.config import Settings
from tests import contract_hooks, factories
from tests.factories import Account, Api

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("PANE_CONTRACT_EXAMPLES", "25"))


class _AppOfTheSession:
    """Stands in for the app at collection, when the servers (and so the settings) do not exist
    yet; the contract_app fixture puts the real one behind it."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the contract_app fixture has not started"
        await self.app(scope, receive, send)


APP = _AppOfTheSession()
schema = schemathesis.openapi.from_path(
    ROOT / "openapi" / "openapi.json",
    config=schemathesis.Config.from_path(ROOT / "schemathesis.toml"),
)
schema.app = APP  # what from_asgi does: calls go to the app in-process

# Coverage-phase cases are built at collection, before any fixture runs, with the credential
# the auth provider gives then: a stand-in, which each call swaps for the owner's token.
STAND_IN = "Bearer contract-owner"
TOKEN: dict[str, str] = {}


@schema.auth(refresh_interval=None)
class _OwnerToken:
    """`Authorization` as the document's security scheme, so that schemathesis leaves it out
    of the cases that test a missing or wrong credential."""

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        return STAND_IN

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = data


@pytest.fixture(scope="session")
def contract_app(settings: Settings) -> Iterator[None]:
    APP.app = create_app(settings)
    try:
        yield
    finally:
        # The lifespan schemathesis started at the first call (pool, Redis) ends before the
        # servers fixture drops the database.
        asgi.shutdown_lifespans()
        APP.app = None


@pytest.fixture(scope="session")
async def contract_owner(api: Api) -> Account:
    """The caller: a workspace owner whose workspace has a link, its runs, vendor content,
    leads, a key and an invitation, so that lists answer rows and reads by id find some."""
    owner = await api.signup(workspace="Contract")
    vendor = await api.new_vendor()
    link_id = uuid.UUID((await api.link(owner, vendor))["id"])
    await factories.seed_vendor_content(
        api.admin_url, owner.workspace_id, vendor, link_id, "contract"
    )
    leads = await api.seed_leads(owner.workspace_id, vendor, 3)
    await api.api_key(owner, ["leads:read"])
    invited = await api.http.post(
        "/v1/invitations", json={"email": factories.unique_email()}, headers=owner.headers
    )
    assert invited.status_code == 201, invited.text

    async def ids(path: str) -> list[str]:
        response = await api.http.get(path, headers=owner.headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    contract_hooks.REAL_IDS.update(
        lead_id=[str(lead) for lead in leads],
        link_id=[str(link_id)],
        vendor_id=[str(vendor)],
        run_id=await ids(f"/v1/links/{link_id}/runs"),
        key_id=await ids("/v1/api-keys"),
        invitation_id=await ids("/v1/invitations"),
        user_id=[str(owner.user_id)],
    )
    TOKEN["owner"] = f"Bearer {owner.access_token}"
    return owner


@pytest.mark.usefixtures("contract_app", "contract_owner")
@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES, deadline=None)
def test_operation_keeps_the_contract(case: schemathesis.Case) -> None:
    if case.headers and case.headers.get("Authorization") == STAND_IN:
        case.headers["Authorization"] = TOKEN["owner"]
    case.call_and_validate()


def test_blank_in_the_document_is_blank_in_python() -> None:
    """Names must hold something not blank: the pattern the document publishes refuses exactly
    the characters str.strip() would remove."""
    pattern = re.compile(NOT_BLANK)
    disagree = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if (pattern.fullmatch(chr(code)) is None) != chr(code).isspace()
    ]
    assert not disagree
