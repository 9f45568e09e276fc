"""How to get from one page of a stream to the next: small objects, one per style, that look
at the answer and say what to ask for next (or that there is nothing more).

Every paginator refuses to loop: a cursor token or next URL the vendor already sent, or a page
identical to the one before (a vendor ignoring the page parameter), stops the read with
``PaginationLoop`` instead of requesting the same thing for ever. Next URLs must stay on the
host the stream started on, so the link's credentials never travel elsewhere.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import httpx

from pane.connectors.base import ConnectorError
from pane.connectors.generic_rest.manifest import (
    CursorTokenPagination,
    LinkHeaderPagination,
    NextUrlPagination,
    NoPagination,
    OffsetPagination,
    PageNumberPagination,
    Pagination,
)
from pane.connectors.generic_rest.mapping import compile_path, get_path


class PaginationLoop(ConnectorError):
    """The vendor keeps pointing pane back at a page it already read."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page to fetch: ``params`` are merged into the URL's own query."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)


class Paginator(ABC):
    def __init__(self, *, page_size: int | None = None) -> None:
        self.page_size = page_size
        self._seen: set[str] = set()
        self._last_edges: tuple[Any, Any] | None = None

    def first(self, request: PageRequest) -> PageRequest:
        """The first page's request (a paginator may add its starting parameter)."""
        return request

    def next(
        self, request: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        """The request for the page after this one, or None after the last page."""
        if records:
            edges = (records[0], records[-1])
            if edges == self._last_edges:
                raise PaginationLoop(
                    f"{_bare(request.url)} answered the same page twice; "
                    "stopping rather than reading it for ever"
                )
            self._last_edges = edges
        return self._next(request, response, body, records)

    @abstractmethod
    def _next(
        self, request: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None: ...

    def _once(self, what: str, value: str, *, shown: str | None = None) -> None:
        if value in self._seen:
            raise PaginationLoop(
                f"the vendor sent the same {what} twice ({(shown or value)[:120]}); "
                "stopping rather than looping"
            )
        self._seen.add(value)

    def _short(self, records: list[Any]) -> bool:
        return self.page_size is not None and len(records) < self.page_size

    def _follow(self, request: PageRequest, target: str) -> PageRequest:
        current = httpx.URL(request.url)
        following = current.join(target)
        if (following.scheme, following.host, following.port) != (
            current.scheme,
            current.host,
            current.port,
        ):
            raise ConnectorError(
                f"the next page is on another host ({following.host}); pane does not send "
                "the link's credentials there"
            )
        self._once("next page URL", str(following), shown=_bare(str(following)))
        return PageRequest(url=str(following))


class SinglePage(Paginator):
    def _next(
        self, request: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        return None


class CursorTokenPaginator(Paginator):
    def __init__(self, spec: CursorTokenPagination, *, page_size: int | None = None) -> None:
        super().__init__(page_size=page_size)
        self.token_path = compile_path(spec.token_path)
        self.param = spec.param

    def _next(
        self, request: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        token = get_path(body, self.token_path)
        if token is None or token == "" or token is False:
            return None
        token = str(token)
        self._once("cursor token", token)
        return PageRequest(url=request.url, params={**request.params, self.param: token})


class PageNumberPaginator(Paginator):
    def __init__(self, spec: PageNumberPagination, *, page_size: int | None = None) -> None:
        super().__init__(page_size=page_size)
        self.spec = spec
        self.total_path = compile_path(spec.total_pages_path) if spec.total_pages_path else None
        self.page = spec.start

    def first(self, request: PageRequest) -> PageRequest:
        return PageRequest(url=request.url, params={**request.params, self.spec.param: self.page})

    def _next(
        self, request: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        if not records or (self.spec.stop_on_short_page and self._short(records)):
            return None
        if self.total_path is not None:
            total = get_path(body, self.total_path)
            try:
                # Pages counted from 0 end one before the total.
                if total is not None and self.page - self.spec.start + 1 >= int(total):
                    return None
            except (TypeError, ValueError) as exc:
                raise ConnectorError(f"total pages {total!r} is not a number") from exc
        self.page += 1
        return PageRequest(url=request.url, params={**request.params, self.spec.param: self.page})


class OffsetPaginator(Paginator):
    def __init__(self, spec: OffsetPagination, *, page_size: int | None = None) -> None:
        super().__init__(page_size=page_size)
        self.spec = spec
        self.total_path = compile_path(spec.total_path) if spec.total_path else None
        self.offset = spec.start

    def first(self, request: PageRequest) -> PageRequest:
        return PageRequest(url=request.url, params={**request.params, self.spec.param: self.offset})

    def _next(
        self, request: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        if not records or (self.spec.stop_on_short_page and self._short(records)):
            return None
        # On by what arrived, not by page_size: a vendor that caps the page skips nothing.
        self.offset += len(records)
        if self.total_path is not None:
            total = get_path(body, self.total_path)
            try:
                if total is not None and self.offset >= int(total):
                    return None
            except (TypeError, ValueError) as exc:
                raise ConnectorError(f"total {total!r} is not a number") from exc
        return PageRequest(url=request.url, params={**request.params, self.spec.param: self.offset})


class LinkHeaderPaginator(Paginator):
    def __init__(self, spec: LinkHeaderPagination, *, page_size: int | None = None) -> None:
        super().__init__(page_size=page_size)
        self.rel = spec.rel

    def _next(
        self, request: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        target = response.links.get(self.rel, {}).get("url")
        return self._follow(request, target) if target else None


class NextUrlPaginator(Paginator):
    def __init__(self, spec: NextUrlPagination, *, page_size: int | None = None) -> None:
        super().__init__(page_size=page_size)
        self.url_path = compile_path(spec.url_path)

    def _next(
        self, request: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        target = get_path(body, self.url_path)
        if not target:
            return None
        if not isinstance(target, str):
            raise ConnectorError(f"the next page's URL {target!r} is not text")
        return self._follow(request, target)


def _bare(url: str) -> str:
    """A URL fit for a message: without its query, which may carry a key."""
    return str(httpx.URL(url).copy_with(query=None))


def paginator_for(spec: Pagination, *, page_size: int | None = None) -> Paginator:
    """A fresh paginator (they keep state: use one per read)."""
    if isinstance(spec, CursorTokenPagination):
        return CursorTokenPaginator(spec, page_size=page_size)
    if isinstance(spec, PageNumberPagination):
        return PageNumberPaginator(spec, page_size=page_size)
    if isinstance(spec, OffsetPagination):
        return OffsetPaginator(spec, page_size=page_size)
    if isinstance(spec, LinkHeaderPagination):
        return LinkHeaderPaginator(spec, page_size=page_size)
    if isinstance(spec, NextUrlPagination):
        return NextUrlPaginator(spec, page_size=page_size)
    assert isinstance(spec, NoPagination)
    return SinglePage(page_size=page_size)
