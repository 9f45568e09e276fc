"""Every error leaves pane as RFC 9457 ``application/problem+json`` with a stable ``type``.

The one place where the services' refusals (``pane.errors``) become HTTP statuses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from pane import errors
from pane.errors import OUTAGES

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:pane:problem:"

log = structlog.get_logger("pane.errors")


@dataclass(frozen=True, slots=True)
class Kind:
    status: int
    slug: str
    title: str


# Most specific first: a subclass maps before its base.
KINDS: dict[type[errors.DomainError], Kind] = {
    errors.BadCursor: Kind(400, "bad-cursor", "Invalid cursor"),
    errors.Malformed: Kind(400, "bad-request", "Bad request"),
    errors.Unauthenticated: Kind(401, "unauthorized", "Authentication required"),
    errors.Forbidden: Kind(403, "forbidden", "Not allowed"),
    errors.NotFound: Kind(404, "not-found", "Not found"),
    errors.Conflict: Kind(409, "conflict", "Conflict"),
    errors.Gone: Kind(410, "gone", "Gone"),
    errors.Stale: Kind(412, "precondition-failed", "Precondition failed"),
    errors.Invalid: Kind(422, "validation-error", "Invalid request"),
    errors.RateLimited: Kind(429, "rate-limited", "Too many requests"),
    errors.Unavailable: Kind(503, "unavailable", "Service unavailable"),
}


class FieldError(BaseModel):
    field: str = Field(description="Where: `body.…`, `query.…`, `path.…` or `header.…`.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details. `type` is stable: branch on it, not on `detail`."""

    type: str = Field(
        pattern=r"^urn:pane:problem:[a-z-]+$",
        description="`urn:pane:problem:<slug>`, e.g. `urn:pane:problem:not-found`.",
    )
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do, for a person.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldError] | None = Field(
        default=None, description="The fields at fault (validation errors)."
    )
    current_version: int | None = Field(
        default=None, description="With 412: the version the resource is at now."
    )


_REF = "#/components/schemas/{model}"

# What each status means wherever the document declares it.
_MEANINGS = {
    400: "Malformed: the body is not JSON, or a cursor or header is not one this API gave out.",
    401: "Missing, invalid or expired credentials.",
    403: "These credentials may not do this.",
    404: "No such resource, or not one these credentials can see.",
    409: "Clashes with the resource's current state.",
    410: "Gone for good: the position is older than the events kept; resync from the latest.",
    412: "The resource changed since the ETag sent in If-Match.",
    413: "The request body is too large.",
    422: "Invalid request: `errors` names the fields.",
    429: "Too many attempts: try again after Retry-After seconds.",
    500: "Unexpected error; the X-Request-Id header finds its log line.",
    503: "A backing service is unreachable: try again after Retry-After seconds.",
}

# Routes behind `Authorization: Bearer`, and what a JSON request body adds.
AUTHENTICATED = (401, 403, 422, 503)
BODY = (400, 413)


def component_ref(name: str) -> str:
    """A reference to one of the document's schema components."""
    return _REF.format(model=name)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries that document ``statuses`` as problem+json."""
    return {
        status: {
            "description": _MEANINGS[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": component_ref("Problem")}}},
        }
        for status in statuses
    }


def publish_problem_schema(app: FastAPI) -> None:
    """Put ``Problem`` (which ``problems()`` refers to) among the document's components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = generate()
            _, found = models_json_schema([(Problem, "serialization")], ref_template=_REF)
            components = app.openapi_schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(found["$defs"])
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


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


def kind_of(exc: errors.DomainError) -> Kind:
    for error_type in type(exc).__mro__:
        kind = KINDS.get(error_type)
        if kind is not None:
            return kind
    return Kind(400, "bad-request", "Bad request")


def headers_for(exc: errors.DomainError) -> dict[str, str]:
    if isinstance(exc, errors.Unauthenticated):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, errors.RateLimited | errors.Unavailable):
        return {"Retry-After": str(exc.retry_after)}
    return {}


def domain_problem(exc: errors.DomainError, instance: str | None) -> Response:
    kind = kind_of(exc)
    return problem_response(
        kind.status,
        kind.slug,
        kind.title,
        exc.detail,
        instance=instance,
        headers=headers_for(exc),
        **exc.extra,
    )


async def _domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.DomainError)
    return domain_problem(exc, request.url.path)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        source, rest = parts[0], parts[1:]
        return f"{source}.{'.'.join(rest)}" if rest else source
    return ".".join(parts)


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    found = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in found):
        return problem_response(
            400,
            "malformed-json",
            "Malformed JSON",
            "the request body is not valid JSON",
            instance=request.url.path,
        )
    fields = [
        {"field": _location(error.get("loc", ())), "message": error.get("msg", "invalid")}
        for error in found
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
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route matches {request.method} {request.url.path}"
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem_response(
        exc.status_code, slug, title, detail, instance=request.url.path, headers=headers
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route serves on this path: Starlette names only those of the first
    route whose path matched, and FastAPI has a route per method."""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


async def _dependency_unavailable(request: Request, exc: Exception) -> Response:
    log.error("dependency unavailable", path=request.url.path, error=repr(exc))
    return domain_problem(
        errors.Unavailable(
            "a backing service (database or Redis) is unreachable; try again shortly"
        ),
        request.url.path,
    )


async def _database_busy(request: Request, exc: Exception) -> Response:
    # SQLAlchemy's pool waited its timeout for a free connection (not the built-in
    # TimeoutError): the database is up, this process has more requests than connections.
    log.error("no free database connection", path=request.url.path, error=repr(exc))
    return domain_problem(
        errors.Unavailable("every database connection of this server is busy; try again shortly"),
        request.url.path,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    for exc_type in OUTAGES:
        app.add_exception_handler(exc_type, _dependency_unavailable)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, _database_busy)
