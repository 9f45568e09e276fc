"""Retries with exponential backoff and jitter on connection errors, 429 and 5xx, waiting
as long as the vendor's Retry-After asks; tenacity does the bookkeeping."""

from __future__ import annotations

import email.utils
import time

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)

from pane.connectors.http.guard import TargetNotAllowed

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 120.0


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds (either form RFC 9110 allows), capped; None if absent."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class _Wait:
    def __init__(self, initial: float, maximum: float) -> None:
        self.backoff = wait_exponential_jitter(multiplier=initial, max=maximum)

    def __call__(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            asked = retry_after_seconds(outcome.result())
            if asked is not None:
                return asked
        return float(self.backoff(state))


def _retryable_response(response: httpx.Response) -> bool:
    return response.status_code in RETRYABLE_STATUS


def _retryable_error(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, TargetNotAllowed)


def _give_up(state: RetryCallState) -> httpx.Response:
    """After the last attempt: the vendor's last answer, or its last error raised."""
    assert state.outcome is not None
    response: httpx.Response = state.outcome.result()
    return response


class RetryingTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        attempts: int = 5,
        initial_wait: float = 0.5,
        max_wait: float = 30.0,
    ) -> None:
        self.inner = inner
        self.attempts = attempts
        self.wait = _Wait(initial_wait, max_wait)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if _retryable_response(response):
            await response.aread()  # error bodies are small; read so the connection frees
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=self.wait,
            retry=retry_if_result(_retryable_response) | retry_if_exception(_retryable_error),
            retry_error_callback=_give_up,
        )
        response: httpx.Response = await retrying(self._send, request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
