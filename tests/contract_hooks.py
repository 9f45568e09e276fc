"""Schemathesis hooks for the contract test (tests/test_contract.py, and `schemathesis run`
through schemathesis.toml): what generation must know that the OpenAPI document cannot say, and
the refusals of schema-valid requests that only the server can judge, each with its reason."""

from __future__ import annotations

import string
import uuid
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis.openapi.checks import RejectedPositiveData

# email-validator (behind EmailStr) refuses special-use domains (.test, .local, .invalid...),
# and schemathesis's own email strategy draws `.test` now and then.
_LOCAL_PART = st.text(
    string.ascii_lowercase + string.digits + "!#$%&'*+-/=?^_`{|}~", min_size=1, max_size=20
)
schemathesis.openapi.format(
    "email",
    st.builds(
        "{}@{}.example.com".format, _LOCAL_PART, st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True)
    ),
)

# The refusals of schema-valid requests that only the server can judge, each with its reason:
# (operation, status) -> the problem's fields that make the refusal legitimate (None: any).
SERVER_JUDGED: dict[tuple[str, int], frozenset[str] | None] = {
    # expires_at must be in the future: the clock's to judge
    ("POST /v1/api-keys", 422): frozenset({"body.expires_at"}),
    # the connector must be installed, the config fit that connector's own schema, and the
    # vendor accept config and credentials in a live check
    ("POST /v1/links", 422): None,
    ("PATCH /v1/links/{link_id}", 422): None,
    # only the streams that the link's connector reads, which depend on its config
    ("POST /v1/links/{link_id}/sync", 422): frozenset({"body.streams"}),
    # owner_id must be a member of the workspace; a rejected lead needs a status_reason
    ("PATCH /v1/leads/{lead_id}", 422): frozenset({"body.owner_id", "body.status_reason"}),
    # If-Match names a version the lead is not at
    ("PATCH /v1/leads/{lead_id}", 412): None,
}
# Any list's `cursor` is opaque: only the cursors a list handed out are valid.
BAD_CURSOR = "urn:pane:problem:bad-cursor"

# Ids of rows the contract test's workspace really has, by path parameter name; filled by the
# test before it runs, empty for `schemathesis run` (whose stateful phase reuses the ids that
# responses carry).
REAL_IDS: dict[str, list[str]] = {}


@schemathesis.hook
def map_path_parameters(
    context: Any, path_parameters: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Point half of the generated ids at real rows, so reads by id answer 200 and their bodies
    are checked too. DELETE keeps its random ids: the rows stay for the operations after it."""
    if not path_parameters or context.operation.method.upper() == "DELETE":
        return path_parameters
    mapped = dict(path_parameters)
    for name, value in path_parameters.items():
        pool = REAL_IDS.get(name)
        try:
            drawn = uuid.UUID(str(value)).int
        except ValueError:
            continue
        if pool and drawn % 2 == 0:
            mapped[name] = pool[drawn // 2 % len(pool)]
    return mapped


def _problem(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but the refusals of schema-valid requests named above."""
    if not isinstance(failure, RejectedPositiveData):
        return True
    meta = case.meta
    if meta is not None and any(not info.mode.is_positive for info in meta.components.values()):
        # schemathesis 4.32.5's coverage phase labels some cases positive whose header it drew
        # negative (If-Match: 0): not schema-valid requests at all
        return False
    problem = _problem(response)
    if response.status_code == 400 and problem.get("type") == BAD_CURSOR:
        return False
    key = (case.operation.label, response.status_code)
    if key not in SERVER_JUDGED:
        return True
    fields = SERVER_JUDGED[key]
    if fields is None:
        return False
    named = {error.get("field") for error in problem.get("errors") or [] if isinstance(error, dict)}
    return not (named and named <= fields)
