"""A record keeps the vendor's payload as it came, and refuses one that is not a JSON object
(a connector's mistake is a failed record, never a failed write)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pane.connectors.records import LeadRecord


def test_a_record_keeps_the_vendors_object_as_it_came() -> None:
    payload = {"lead_ref": "GLX-1", "nested": {"tags": ["a", "b"]}}
    record = LeadRecord(external_id="GLX-1", raw=payload)
    assert record.raw is payload
    assert LeadRecord.model_json_schema()["properties"]["raw"]["type"] == "object"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (["GLX-1"], "JSON object, not list"),
        ("GLX-1", "JSON object, not str"),
        ({1: "GLX-1"}, "keys are strings, not int"),
    ],
)
def test_a_payload_that_is_not_a_json_object_is_refused(raw: Any, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        LeadRecord(external_id="GLX-1", raw=raw)
