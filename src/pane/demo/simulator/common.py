"""What every simulated vendor's endpoints share: error bodies, fast JSON, dates, page sizes."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

T = TypeVar("T")
MAX_PAGE_SIZE = 500


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    # orjson: a benchmark pulls hundreds of thousands of leads through these endpoints.
    return Response(
        orjson.dumps(content),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def problem(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status_code=status, headers=headers)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def page_size(request: Request, name: str, default: int = 100) -> int:
    try:
        return max(1, min(int(request.query_params.get(name, default)), MAX_PAGE_SIZE))
    except ValueError:
        return default


def encode_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_cursor(token: str) -> str:
    """The text inside an opaque cursor; ValueError if it is not one of ours."""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor") from exc


def offset_page(items: list[T], request: Request, size: int) -> tuple[list[T], str | None]:
    """A page of a short list behind an opaque cursor token (an offset, base64-encoded)."""
    token = request.query_params.get("cursor")
    start = int(decode_cursor(token)) if token else 0
    chunk = items[start : start + size]
    more = start + size < len(items)
    return chunk, encode_cursor(str(start + size)) if more else None
