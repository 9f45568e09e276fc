"""The two REST resources pane uses: ``queryAll`` (read, following ``nextRecordsUrl``) and
``sobjects`` (create). Salesforce answers errors as a list of
``{"message", "errorCode", "fields"}``; its message is what the user is shown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from pane.connectors.base import CheckFailed, ConnectorError, CredentialsRejected
from pane.connectors.salesforce.config import SalesforceConfig


@dataclass(frozen=True, slots=True)
class Problem:
    """What Salesforce said went wrong."""

    status: int
    message: str
    error_code: str | None = None
    fields: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        code = f"{self.error_code}: " if self.error_code else ""
        return f"{code}{self.message}"


class QueryRefused(CheckFailed):
    """The org refused a query: an object or field the link names that it does not have or
    lets pane read, an API version it does not serve, an org without API access."""

    def __init__(self, reason: str, problem: Problem) -> None:
        super().__init__(reason)
        self.problem = problem


class DealRejected(ConnectorError):
    """The deal registration was not created: Salesforce's message (a validation rule, a
    required field) or pane's own reason, and the fields it concerns."""

    def __init__(
        self, message: str, *, error_code: str | None = None, fields: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.fields = fields or []


def problem(response: httpx.Response) -> Problem:
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body if isinstance(body, list) else [body]
    found = [error for error in errors if isinstance(error, dict)]
    messages = [str(e.get("message") or e.get("error_description") or "") for e in found]
    messages = [message for message in messages if message]
    if not messages:
        return Problem(response.status_code, f"{response.status_code} {response.reason_phrase}")
    codes = [str(e.get("errorCode") or e.get("error") or "") for e in found]
    fields = [str(name) for e in found for name in (e.get("fields") or [])]
    return Problem(
        status=response.status_code,
        message="; ".join(messages),
        error_code=next((code for code in codes if code), None),
        fields=fields,
    )


def _refuse_query(response: httpx.Response, what: str) -> None:
    if response.status_code < 400:
        return
    found = problem(response)
    if response.status_code == 401:
        # The auth flow has already fetched a new token once; this one was refused too.
        raise CredentialsRejected(f"Salesforce refused pane's session ({found})")
    if response.status_code >= 500 or found.error_code == "REQUEST_LIMIT_EXCEEDED":
        raise ConnectorError(f"Salesforce could not answer {what} ({found})")
    raise QueryRefused(f"Salesforce refused {what} ({found})", found)


class SalesforceApi:
    def __init__(self, client: httpx.AsyncClient, config: SalesforceConfig) -> None:
        self.client = client
        self.config = config

    def _next(self, next_records_url: Any) -> str:
        # Only ever follow a path on the org itself: the bearer token goes with the request.
        if not isinstance(next_records_url, str) or not next_records_url.startswith(
            "/services/data/"
        ):
            raise ConnectorError(
                f"Salesforce sent an unexpected nextRecordsUrl: {next_records_url!r}"
            )
        return f"{self.config.base_url}{next_records_url}"

    async def query(
        self, soql: str, *, what: str, include_deleted: bool = True
    ) -> AsyncIterator[dict[str, Any]]:
        """Each batch of the query's answer (``records``, ``done``, ``nextRecordsUrl``), in
        turn. ``include_deleted`` uses ``queryAll``: deleted rows come with IsDeleted true."""
        resource = "queryAll" if include_deleted else "query"
        url = f"{self.config.data_url}/{resource}"
        params: dict[str, str] | None = {"q": soql}
        while True:
            response = await self.client.get(url, params=params)
            _refuse_query(response, what)
            try:
                body = response.json()
            except ValueError as exc:
                raise ConnectorError(f"Salesforce answered {what} with no JSON") from exc
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                raise ConnectorError(f"Salesforce answered {what} with no records")
            yield body
            if body.get("done", True):
                return
            url, params = self._next(body.get("nextRecordsUrl")), None

    async def create(self, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(
            f"{self.config.data_url}/sobjects/{sobject}/", json=fields
        )
        if response.status_code == 401:
            raise CredentialsRejected(f"Salesforce refused pane's session ({problem(response)})")
        if response.status_code >= 500:
            raise ConnectorError(f"Salesforce could not create the {sobject} ({problem(response)})")
        if response.status_code >= 400:
            found = problem(response)
            raise DealRejected(found.message, error_code=found.error_code, fields=found.fields)
        body = response.json()
        if not isinstance(body, dict) or not body.get("id"):
            raise ConnectorError(f"Salesforce created the {sobject} but sent no id")
        return body
