"""Secrets stay out of logs; a link's request budget holds across clients."""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime, timedelta

import orjson
import respx
import structlog

from pane.connectors.http import build_client
from pane.connectors.http.ratelimit import LinkRateLimit
from pane.logs import configure_logging, redact


def test_redaction_of_query_tokens_and_authorization_headers():
    assert redact("GET https://v.example.com/p.csv?token=abc123&page=2") == (
        "GET https://v.example.com/p.csv?token=[redacted]&page=2"
    )
    assert redact("https://x/y?client_secret=s3&api_key=k9") == (
        "https://x/y?client_secret=[redacted]&api_key=[redacted]"
    )
    assert "Zm9vOmJhcg" not in redact("Authorization: Basic Zm9vOmJhcg==")
    assert "k-123" not in redact("{'X-Api-Key': 'k-123'}")
    assert redact("GET /v1/leads 200") == "GET /v1/leads 200"


def test_vendor_secrets_never_reach_the_log_output(capfd):
    configure_logging("INFO", json=True)
    try:
        logging.getLogger("httpx").info(
            'HTTP Request: GET https://vendor.example/leads?api_key=supersecret42 "HTTP/1.1 200 OK"'
        )
        structlog.get_logger("pane.sync").info(
            "vendor call",
            url="https://vendor.example/p.csv?token=tok-9913",
            headers="Authorization: Bearer abc.def",
        )
        written = capfd.readouterr().err
    finally:
        configure_logging("WARNING", json=True)
    assert "supersecret42" not in written
    assert "tok-9913" not in written
    assert "abc.def" not in written
    assert written.count("[redacted]") >= 3
    lines = [orjson.loads(line) for line in written.splitlines()]
    assert [line["event"] for line in lines][-1] == "vendor call"
    for line in lines:  # both kinds of logger: a level and a UTC time on every line
        assert line["level"] == "info"
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() == timedelta(0)


@respx.mock
async def test_the_link_budget_holds_across_two_clients(servers):
    route = respx.get("http://93.184.216.34/leads").respond(200)
    link = f"link-{secrets.token_hex(4)}"
    budgets = [LinkRateLimit.on(servers.redis_url, link, "3/second") for _ in range(2)]
    clients = [build_client(rate_limit=budget) for budget in budgets]
    started = time.monotonic()
    try:
        for number in range(7):
            response = await clients[number % 2].get("http://93.184.216.34/leads")
            assert response.status_code == 200
    finally:
        for client, budget in zip(clients, budgets, strict=True):
            await client.aclose()
            await budget.aclose()
    assert route.call_count == 7
    # 3 per second shared by both clients: the 7th request cannot go before 2 seconds
    assert time.monotonic() - started >= 2.0
