"""The OpenAPI document pane serves: the event catalogue published as its webhooks, each with
its payload's type, and no error format that pane never sends."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pane.api.problems import PROBLEM_MEDIA_TYPE
from pane.catalogue import EVENT_MODELS, EventType


@pytest.fixture
async def document(http: httpx.AsyncClient) -> dict[str, Any]:
    served = await http.get("/openapi.json")
    assert served.status_code == 200
    return dict(served.json())


def _component(document: dict[str, Any], reference: str) -> dict[str, Any]:
    prefix = "#/components/schemas/"
    assert reference.startswith(prefix), reference
    return dict(document["components"]["schemas"][reference.removeprefix(prefix)])


async def test_every_event_type_is_a_webhook_carrying_its_own_payload(
    document: dict[str, Any],
) -> None:
    webhooks = document["webhooks"]
    assert set(webhooks) == {event_type.value for event_type in EventType}
    for event_type in EventType:
        operation = webhooks[event_type.value]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        payload = _component(document, body["$ref"])
        # the component is this event's model: its `type` is this event type and nothing else
        assert payload["properties"]["type"]["const"] == event_type.value
        assert set(payload["required"]) >= {"seq", "type", "data"}
        assert EVENT_MODELS[event_type].__name__ == body["$ref"].rsplit("/", 1)[1]
        # what a receiver answers is not pane's to describe; pane's own formats are not in it
        assert set(operation["responses"]) == {"204"}


async def test_the_document_declares_no_error_format_pane_never_sends(
    document: dict[str, Any],
) -> None:
    """Every refusal pane sends is problem+json (the one other error-status body is /readyz's
    503, its readiness report for load balancers); FastAPI's own validation-error body, which a
    generated client would otherwise type, is nowhere in the document."""
    assert "HTTPValidationError" not in json.dumps(document)
    assert "ValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and (path, status) != ("/readyz", "503"):
                    assert set(response.get("content", {})) == {PROBLEM_MEDIA_TYPE}, (
                        method,
                        path,
                        status,
                    )
