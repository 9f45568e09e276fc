"""Webhooks vendors push: ``POST /v1/hooks/{link_id}``, authenticated by its signature alone."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request, Response, status

from pane.api.deps import PushedTx, RuntimeDep
from pane.api.problems import problems
from pane.api.schemas import WebhookReceived
from pane.services import webhooks

router = APIRouter(prefix="/v1/hooks", tags=["webhooks"])

_SIGNED_WITH = [
    {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }
    for name, description in (
        ("webhook-id", "The delivery's id: its retries carry the same one."),
        ("webhook-timestamp", "When it was signed, in Unix seconds (within 5 minutes of now)."),
        (
            "webhook-signature",
            "Space-separated `v1,<base64 HMAC-SHA256>` entries over `{id}.{timestamp}.{body}`.",
        ),
    )
]


@router.post(
    "/{link_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {
            "model": WebhookReceived,
            "description": "A delivery already received: nothing changed.",
        },
        **problems(400, 401, 404, 413, 422, 503),
    },
    openapi_extra={
        "parameters": _SIGNED_WITH,
        "requestBody": {
            "required": True,
            "description": "The vendor's payload, as its connector (or manifest) describes it.",
            "content": {"application/json": {"schema": {}}},
        },
    },
)
async def receive_webhook(
    link_id: uuid.UUID, request: Request, response: Response, tx: PushedTx, runtime: RuntimeDep
) -> WebhookReceived:
    """A vendor pushes records to one link. No bearer credentials: the signature is the
    authentication (Standard Webhooks v1 by default, with the link's `whsec_` secret; a
    connector may declare its vendor's own scheme). The delivery is stored before the answer:
    202 when it is new (applied within seconds, or held while the link is paused), 200 with the
    same id for a delivery already received. 401 when the signature does not hold, 404 for a
    link that does not exist; neither stores anything."""
    received = await webhooks.receive(
        tx,
        keyring=runtime.keyring,
        link_id=link_id,
        headers=dict(request.headers.items()),
        body=await request.body(),
        now=time.time(),
    )
    if received.duplicate:
        response.status_code = status.HTTP_200_OK
    return WebhookReceived(
        id=received.delivery_id, status=received.status, duplicate=received.duplicate
    )
