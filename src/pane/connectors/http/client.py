"""Build the client a connector gets."""

from __future__ import annotations

import httpx

from pane import __version__
from pane.connectors.http.guard import PublicOnlyTransport
from pane.connectors.http.ratelimit import LinkRateLimit, RateLimitedTransport
from pane.connectors.http.retry import RetryingTransport

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def build_client(
    *,
    base_url: str = "",
    auth: httpx.Auth | None = None,
    allow_private: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    attempts: int = 5,
    initial_wait: float = 0.5,
    rate_limit: LinkRateLimit | None = None,
) -> httpx.AsyncClient:
    """A client with auth, timeouts, retries and the link's rate limit; unless
    ``allow_private``, every request (and redirect) to a non-public address is refused."""
    inner = transport or httpx.AsyncHTTPTransport()
    if rate_limit is not None:
        inner = RateLimitedTransport(inner, rate_limit)
    if not allow_private:
        inner = PublicOnlyTransport(inner)
    return httpx.AsyncClient(
        base_url=base_url,
        auth=auth,
        timeout=TIMEOUT,
        follow_redirects=True,
        transport=RetryingTransport(inner, attempts=attempts, initial_wait=initial_wait),
        headers={"User-Agent": f"pane/{__version__}"},
    )
