"""Benchmark: vendors pushing signed webhooks to pane against a bare endpoint that does one
``INSERT`` per request, same senders, same database, same run.

    python -m bench.webhooks [--duration 20] [--rounds 3] [--workers 2] [--connections 64]

pane's ``POST /v1/hooks/{link_id}`` verifies each delivery's Standard Webhooks signature with
the link's secret, stores it in ``webhook_inbox`` (row-level security on, deduplicated on the
vendor's id), asks for it to be applied through the outbox and commits before it answers 202;
the bare endpoint (``bench/bare_app.py``, Starlette + asyncpg as the table owner) inserts the
body into a table with the same uniqueness and answers 202. No worker runs: this measures
taking deliveries in, not applying them.

Load: wrk (Debian package `wrk`), 2 threads and ``--connections`` connections, each request a
different delivery (an Acme lead as its API lists it, ~500 bytes), signed ahead of each run
and split between the threads so that none is sent twice. Rounds alternate bare and pane;
each pane run is compared with the bare run right before it, and the target (pane >= 0.5 of
bare's req/s) is judged on the median of those paired ratios. Prints req/s, p50 and p99 of
both, the ratios, and for every pane run the count that proves nothing was lost: rows stored
for the run's deliveries >= the 2xx answers wrk counted (requests still in flight when wrk
stopped may be stored without being counted; none is ever answered and not stored).

Servers: PANE_BENCH_DATABASE_URL (a superuser URL) and PANE_BENCH_REDIS_URL, else embedded
ones under ~/.cache/pane-bench.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import orjson
from cryptography.fernet import Fernet

from bench.api import run_wrk, server
from bench.bare_app import BARE_INBOX
from bench.servers import bench_servers, database_url, free_port, fresh_database
from pane.connectors.webhooks import StandardWebhooks, new_secret
from pane.demo.manifests import load
from pane.demo.simulator.acme import AcmeNetworks
from pane.demo.simulator.store import seeded

DATABASE = "pane_bench_webhooks"
SIGNING_KEY = "bench-signing-key-0123456789abcdef0123456789"
# Signed ahead of each run: more than wrk can send in it (it would send one twice otherwise).
DELIVERIES_PER_SECOND = 4000

_LUA = """
local counter = 0
function setup(thread)
  thread:set("me", counter)
  counter = counter + 1
end
function init(args)
  reqs = {}
  local n, i = 0, 0
  for line in io.lines("%(file)s") do
    if i %% 2 == me then
      local wid, ts, sig, body = line:match("^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t(.*)$")
      n = n + 1
      reqs[n] = wrk.format("POST", "%(path)s", {
        ["webhook-id"] = wid, ["webhook-timestamp"] = ts, ["webhook-signature"] = sig,
        ["content-type"] = "application/json"}, body)
    end
    i = i + 1
  end
  sent = 0
end
function request()
  sent = sent + 1
  if sent > #reqs then sent = 1 end
  return reqs[sent]
end
"""


async def prepare(owner_url: str, keys: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A workspace with an Acme link that takes webhooks: (workspace id, link id, secret)."""
    connection = await asyncpg.connect(owner_url)
    try:
        await connection.execute(BARE_INBOX)
        workspace_id, link_id, vendor_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        secret = new_secret()
        await connection.execute(
            "INSERT INTO vendors (id, slug, name, kind)"
            " VALUES ($1, 'bench-acme', 'Acme', 'vendor')",
            vendor_id,
        )
        await connection.execute(
            "INSERT INTO workspaces (id, name) VALUES ($1, 'Bench Reseller')", workspace_id
        )
        config = {"manifest": load("acme"), "base_url": "http://127.0.0.1:9/acme"}
        await connection.execute(
            "INSERT INTO vendor_links (workspace_id, id, vendor_id, connector, config,"
            " webhook_secret_encrypted) VALUES ($1, $2, $3, 'generic_rest', $4::jsonb, $5)",
            workspace_id,
            link_id,
            vendor_id,
            orjson.dumps(config).decode(),
            Fernet(keys.encode()).encrypt(secret.encode()).decode(),
        )
    finally:
        await connection.close()
    return workspace_id, link_id, secret


def signed_deliveries(path: Path, secret: str, count: int, run: str) -> None:
    """``count`` distinct deliveries, one per line: id, timestamp, signature, body."""
    data = seeded("BENCH", 1, leads=0)
    leads = data.add_leads(min(count, 5000))
    scheme, now = StandardWebhooks(), int(time.time())
    with path.open("w") as out:
        for n in range(count):
            lead = AcmeNetworks.lead_json(leads[n % len(leads)])
            body = orjson.dumps({"type": "lead.created", "data": lead})
            headers = scheme.sign(secret, body, webhook_id=f"msg_{run}_{n}", timestamp=now)
            out.write(
                f"{headers['webhook-id']}\t{now}\t{headers['webhook-signature']}\t{body.decode()}\n"
            )


async def stored(owner_url: str, name: str, link_id: uuid.UUID, run: str) -> int:
    table = "webhook_inbox" if name == "pane" else "bench_bare_inbox"
    connection = await asyncpg.connect(owner_url)
    try:
        return int(
            await connection.fetchval(
                f"SELECT count(*) FROM {table} WHERE link_id = $1 AND webhook_id LIKE $2",
                link_id,
                f"msg_{run}_%",
            )
        )
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds per measured run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, bare then pane")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/webhooks.py needs wrk (apt-get install wrk)")

    with bench_servers(DATABASE) as (admin_server, redis_url):
        owner_url = asyncio.run(fresh_database(admin_server, DATABASE))
        app_url = database_url(admin_server, user="pane_app", database=DATABASE)
        keys = Fernet.generate_key().decode()
        _, link_id, secret = asyncio.run(prepare(owner_url, keys))
        pool = max(4, options.connections // options.workers)
        pane_env = {
            "PANE_DATABASE_URL": app_url,
            "PANE_REDIS_URL": redis_url,
            "PANE_TOKEN_SIGNING_KEY": SIGNING_KEY,
            "PANE_CREDENTIAL_KEYS": keys,
            "PANE_DATA_DIR": tempfile.mkdtemp(prefix="pane-bench-"),
            "PANE_DB_POOL_SIZE": str(pool),
            "PANE_LOG_LEVEL": os.environ.get("PANE_LOG_LEVEL", "INFO"),
        }
        bare_env = {"BARE_DATABASE_URL": owner_url, "BARE_POOL": str(pool)}
        results: dict[str, list[dict[str, float]]] = {"pane": [], "bare": []}
        work = Path(tempfile.mkdtemp(prefix="pane-bench-webhooks-"))
        count = DELIVERIES_PER_SECOND * (options.duration + 3)
        for round_number in range(options.rounds):
            for name, target, env in (
                ("bare", "bench.bare_app:app", bare_env),
                ("pane", "pane.app:create_app", pane_env),
            ):
                run = f"{name}{round_number}"
                deliveries, script = work / f"{run}.tsv", work / f"{run}.lua"
                signed_deliveries(deliveries, secret, count, run)
                script.write_text(_LUA % {"file": deliveries, "path": f"/v1/hooks/{link_id}"})
                port = free_port()
                with server(target, port, options.workers, env):
                    measured = run_wrk(port, script, options.duration, options.connections)
                    time.sleep(1.0)  # the last answers' commits
                if measured["requests"] > count:
                    raise RuntimeError(f"wrk sent more than the {count} deliveries signed")
                measured["stored"] = asyncio.run(stored(owner_url, name, link_id, run))
                if measured["stored"] < measured["requests"]:
                    raise RuntimeError(f"{run}: answered {measured} but stored fewer")
                results[name].append(measured)
        report(results, options)


def report(results: dict[str, list[dict[str, float]]], options: argparse.Namespace) -> None:
    print(
        f"\nPOST /v1/hooks/{{link_id}}, signed (Standard Webhooks), {options.connections}"
        f" connections, {options.workers} workers, {options.duration}s x {options.rounds} rounds"
    )
    print(f"{'run':8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'answered':>10}{'stored':>10}")
    for n in range(options.rounds):
        for name in ("bare", "pane"):
            r = results[name][n]
            print(
                f"{name + str(n):8}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}"
                f"{r['requests']:>10.0f}{r['stored']:>10.0f}"
            )
    pairs = list(zip(results["pane"], results["bare"], strict=True))
    throughput = [pane["rps"] / bare["rps"] for pane, bare in pairs]
    tail = [pane["p99"] / bare["p99"] for pane, bare in pairs]
    ratio = statistics.median(throughput)
    print("paired rounds, pane/bare req/s: " + ", ".join(f"{r:.2f}" for r in throughput))
    print("paired rounds, pane/bare p99:   " + ", ".join(f"{r:.2f}" for r in tail))
    verdict = "met" if ratio >= 0.5 else "MISSED"
    print(f"throughput pane/bare (median): {ratio:.2f} (target >= 0.50: {verdict})")
    lost = sum(max(0.0, r["requests"] - r["stored"]) for r in results["pane"])
    print(f"deliveries answered 2xx and not stored: {lost:.0f}")


if __name__ == "__main__":
    main()
