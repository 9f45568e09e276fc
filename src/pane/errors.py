"""Every error leaves pane as RFC 9457 ``application/problem+json`` with a stable ``type``."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:pane:problem:"

log = structlog.get_logger("pane.errors")


class ProblemError(Exception):
    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        keep_changes: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra
        # Some refusals must still commit what the request did (e.g. revoking a token family
        # when a spent refresh token is replayed).
        self.keep_changes = keep_changes


class BadRequest(ProblemError):
    pass


class BadCursor(ProblemError):
    slug, title = "bad-cursor", "Invalid cursor"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class Unprocessable(ProblemError):
    status, slug, title = 422, "validation-error", "Invalid request"


class TooManyRequests(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "unavailable", "Service unavailable"


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        source, rest = parts[0], parts[1:]
        return f"{source}.{'.'.join(rest)}" if rest else source
    return ".".join(parts)


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status,
        exc.slug,
        exc.title,
        exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extra,
    )


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        return problem_response(
            400,
            "malformed-json",
            "Malformed JSON",
            "the request body is not valid JSON",
            instance=request.url.path,
        )
    fields = [
        {"field": _location(error.get("loc", ())), "message": error.get("msg", "invalid")}
        for error in errors
    ]
    summary = "; ".join(f"{item['field']}: {item['message']}" for item in fields)
    return problem_response(
        422,
        "validation-error",
        "Invalid request",
        summary or "the request is invalid",
        instance=request.url.path,
        errors=fields,
    )


_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route matches {request.method} {request.url.path}"
    return problem_response(
        exc.status_code,
        slug,
        title,
        detail,
        instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)


async def _dependency_unavailable(request: Request, exc: Exception) -> Response:
    log.error("dependency unavailable", path=request.url.path, error=repr(exc))
    return problem_response(
        503,
        "unavailable",
        "Service unavailable",
        "a backing service (database or Redis) is unreachable; try again shortly",
        instance=request.url.path,
        headers={"Retry-After": "5"},
    )


def install_dependency_handlers(app: FastAPI) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import InterfaceError, OperationalError

    for exc_type in (
        OperationalError,
        InterfaceError,
        ConnectionError,
        TimeoutError,
        RedisConnectionError,
        RedisTimeoutError,
    ):
        app.add_exception_handler(exc_type, _dependency_unavailable)
