"""Build the client a connector gets."""

from __future__ import annotations

import httpx

from pane import __version__
from pane.connectors.http.guard import PublicOnlyTransport
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
) -> httpx.AsyncClient:
    """A client with auth, timeouts and retries; unless ``allow_private``, every request (and
    every redirect) is refused if its host resolves to a non-public address."""
    inner = transport or httpx.AsyncHTTPTransport()
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
