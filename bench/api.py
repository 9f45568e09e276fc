"""Benchmark: pane's GET /v1/leads?limit=50 (RLS on) against a bare Starlette + asyncpg +
orjson endpoint running the same SQL without RLS, same worker count, same load, same run.

    python -m bench.api [--duration 20] [--rounds 5] [--workers 2] [--connections 64]

Data: 1M leads over 100 workspaces and 20 vendors, seeded once and kept (embedded PostgreSQL
under ~/.cache/pane-bench, or the server named by PANE_BENCH_DATABASE_URL, a superuser URL).
Load: wrk (Debian package `wrk`), each request carrying the token of one of the 100 workspaces
in turn. Rounds alternate bare and pane; each pane run is compared with the bare run right
before it (the machine's speed drifts over minutes, so a ratio of runs minutes apart measures
the drift), and the targets are judged on the median of those paired ratios. Prints req/s, p50
and p99 of both (best of each), the paired ratios, and the plan.

Latency is measured twice. Saturated (the throughput runs): every connection sends again as
soon as it is answered, so by Little's law a request's latency is mostly its wait in the queue,
connections / req/s, and the p99 ratio follows from the throughput ratio (at 0.70 of bare's
req/s, about 1.4x). Paced: both servers get the same pacing (--paced-connections connections,
each waiting --paced-delay-ms between an answer and its next request; by default about 270
req/s, some half of what pane carries saturated, so a little queueing remains and a slower
server is sent a little less), so the p99 is mostly the time a request takes rather than its
wait behind the others. Each server's best paced run is printed with its req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import asyncpg

from bench.servers import bench_servers, database_url, ensure_database, free_port, server_user
from pane.db.migrate import upgrade
from pane.principal import ApiKeyPrincipal
from pane.services.leads import LeadFilters, lead_list
from pane.services.security import AccessTokens, hash_password

WORKSPACES = 100
VENDORS = 20
LEADS = 1_000_000
DATABASE = "pane_bench"
SIGNING_KEY = b"bench-signing-key-0123456789abcdef0123456789"
ROOT = Path(__file__).resolve().parents[1]


async def seed(owner_url: str) -> list[tuple[str, str]]:
    """Seed once; return (user_id, workspace_id) of each workspace's owner."""
    await upgrade(owner_url)
    connection = await asyncpg.connect(owner_url)
    try:
        count = await connection.fetchval("SELECT count(*) FROM leads")
        if count < LEADS:
            print(f"seeding {LEADS:,} leads (once; kept for later runs)...", flush=True)
            started = time.perf_counter()
            await connection.execute("TRUNCATE workspaces, users CASCADE")
            await connection.execute("DELETE FROM vendors WHERE slug LIKE 'bench-%'")
            password = hash_password("bench-password-123")
            async with connection.transaction():
                await connection.execute(
                    """
                    INSERT INTO vendors (id, slug, name, kind)
                    SELECT gen_random_uuid(), 'bench-' || v, 'Bench Vendor ' || v,
                           CASE WHEN v % 5 = 0 THEN 'distributor' ELSE 'vendor' END
                    FROM generate_series(1, $1) v
                    """,
                    VENDORS,
                )
                await connection.execute(
                    """
                    INSERT INTO workspaces (id, name)
                    SELECT gen_random_uuid(), 'Reseller ' || w FROM generate_series(1, $1) w;
                    """,
                    WORKSPACES,
                )
                await connection.execute(
                    """
                    INSERT INTO users (id, email, name, password_hash)
                    SELECT gen_random_uuid(), 'owner-' || w.id || '@bench.example', 'Owner', $1
                    FROM workspaces w
                    """,
                    password,
                )
                await connection.execute(
                    """
                    INSERT INTO memberships (workspace_id, user_id, role)
                    SELECT w.id, u.id, 'owner' FROM workspaces w
                    JOIN users u ON u.email = 'owner-' || w.id || '@bench.example'
                    """
                )
                await connection.execute(
                    """
                    INSERT INTO vendor_links (workspace_id, id, vendor_id, connector)
                    SELECT w.id, gen_random_uuid(), v.id, 'generic_rest'
                    FROM workspaces w CROSS JOIN vendors v WHERE v.slug LIKE 'bench-%'
                    """
                )
                await connection.execute(
                    """
                    WITH ws AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n
                                FROM workspaces),
                         vs AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n
                                FROM vendors WHERE slug LIKE 'bench-%')
                    INSERT INTO leads (workspace_id, id, vendor_id, external_id, first_name,
                                       last_name, email, phone, company, title, country, status,
                                       score, source, vendor_created_at, vendor_updated_at, raw)
                    SELECT ws.id, gen_random_uuid(), vs.id, 'ext-' || g, 'First' || g % 997,
                           'Last' || g % 1009, 'lead' || g || '@customer' || g % 503 || '.example',
                           '+49 30 ' || g, 'Customer ' || g % 4999 || ' GmbH', 'IT Manager', 'DE',
                           (ARRAY['new','accepted','working','converted','lost'])[1 + g % 5],
                           g % 101, 'webinar', now() - (g || ' seconds')::interval, now(),
                           jsonb_build_object('Id', g, 'Status', 'Open')
                    FROM generate_series(0, $1 - 1) g
                    JOIN ws ON ws.n = g % $2
                    JOIN vs ON vs.n = (g / $2) % $3
                    """,
                    LEADS,
                    WORKSPACES,
                    VENDORS,
                )
            await connection.execute("VACUUM ANALYZE leads")
            print(f"seeded in {time.perf_counter() - started:.0f}s", flush=True)
        rows = await connection.fetch(
            "SELECT m.user_id, m.workspace_id FROM memberships m JOIN users u ON u.id = m.user_id"
            " WHERE u.email LIKE 'owner-%@bench.example' ORDER BY m.workspace_id"
        )
        return [(str(row["user_id"]), str(row["workspace_id"])) for row in rows]
    finally:
        await connection.close()


async def explain(app_url: str, workspace_id: str) -> str:
    principal = ApiKeyPrincipal(
        key_id=uuid.UUID(workspace_id),
        workspace_id=uuid.UUID(workspace_id),
        scopes=frozenset(),
    )
    query = lead_list(principal, LeadFilters())
    sql, args = query.sql(None, 50), query.args
    connection = await asyncpg.connect(app_url)
    try:
        async with connection.transaction():
            await connection.execute(
                "SELECT set_config('pane.workspace_id', $1, true)", workspace_id
            )
            plan = await connection.fetch("EXPLAIN " + sql, *args)
    finally:
        await connection.close()
    return "\n".join(row[0] for row in plan)


@contextmanager
def server(
    target: str, port: int, workers: int, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if target.startswith("pane."):
        command.append("--factory")
    # Server logs go to a file, as in production: a pipe read by a terminal or grep would
    # compete for the same cores as the servers under test.
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_for_port(port, process, log, target)
            time.sleep(1.0)
            yield process
        finally:
            process.terminate()
            process.wait(20)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: IO[str], target: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.2)
    log.seek(0)
    raise RuntimeError(f"{target} did not start:\n{log.read()[-4000:]}")


_LUA = """
local headers = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/v1/leads?limit=50", headers[(i %% #headers) + 1])
end
"""
_PACED = """
delay = function()
  return %d
end
"""


def wrk(
    port: int,
    header_sets: list[dict[str, str]],
    duration: int,
    connections: int,
    delay_ms: int | None = None,
) -> dict[str, float]:
    """One wrk run; with ``delay_ms`` each connection waits that long before its next request
    (wrk times a request from when it is sent, so the wait is not in its latency)."""
    entries = ",".join(
        "{" + ",".join(f'["{k}"]="{v}"' for k, v in headers.items()) + "}"
        for headers in header_sets
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % entries)
        if delay_ms is not None:
            script.write(_PACED % delay_ms)
    try:
        return run_wrk(port, Path(script.name), duration, connections)
    finally:
        os.unlink(script.name)


def run_wrk(port: int, script: Path, duration: int, connections: int) -> dict[str, float]:
    """wrk with 2 threads and ``script`` against the server on ``port``: requests answered,
    req/s, p50 and p99 (ms). Any answer that is not 2xx fails the run."""
    output = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError("server answered errors under load:\n" + output)
    return {
        "requests": float(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def report(
    results: dict[str, list[dict[str, float]]],
    paced: dict[str, list[dict[str, float]]],
    plan: str,
    options: argparse.Namespace,
) -> None:
    best = {name: max(runs, key=lambda r: r["rps"]) for name, runs in results.items()}
    print(
        f"\nGET /v1/leads?limit=50 over {LEADS:,} leads,"
        f" {WORKSPACES} workspaces, {VENDORS} vendors;"
        f" {options.connections} connections, {options.workers} workers,"
        f" {options.duration}s x {options.rounds} rounds"
    )
    print(f"{'best of each':14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, label in (("bare", "bare asyncpg"), ("pane", "pane (RLS)")):
        r = best[name]
        print(f"{label:14}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}")
    pairs = list(zip(results["pane"], results["bare"], strict=True))
    throughput = [pane["rps"] / bare["rps"] for pane, bare in pairs]
    tail = [pane["p99"] / bare["p99"] for pane, bare in pairs]
    ratio, p99_ratio = statistics.median(throughput), statistics.median(tail)
    verdict = {True: "met", False: "MISSED"}
    print("paired rounds, pane/bare req/s: " + ", ".join(f"{r:.2f}" for r in throughput))
    print("paired rounds, pane/bare p99:   " + ", ".join(f"{r:.2f}" for r in tail))
    print(f"throughput pane/bare (median): {ratio:.2f} (target >= 0.70: {verdict[ratio >= 0.7]})")
    print(f"p99 pane/bare (median):        {p99_ratio:.2f} saturated (queueing: see the docstring)")
    print(
        f"\npaced: {options.paced_connections} connections, each {options.paced_delay_ms} ms"
        " between an answer and its next request"
    )
    print(f"{'best of each':14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, label in (("bare", "bare asyncpg"), ("pane", "pane (RLS)")):
        r = min(paced[name], key=lambda r: r["p99"])
        print(f"{label:14}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}")
    paced_tail = [
        pane["p99"] / bare["p99"] for pane, bare in zip(paced["pane"], paced["bare"], strict=True)
    ]
    paced_ratio = statistics.median(paced_tail)
    print("paired rounds, pane/bare p99:   " + ", ".join(f"{r:.2f}" for r in paced_tail))
    print(
        f"p99 pane/bare (median):        {paced_ratio:.2f} paced"
        f" (target <= 1.30: {verdict[paced_ratio <= 1.3]})"
    )
    print("plan as pane_app with RLS:\n  " + plan.replace("\n", "\n  "))
    uses_index = re.search(r"Index Scan.*using leads_pkey", plan) is not None
    print(f"index scan on leads_pkey (workspace_id, id): {'yes' if uses_index else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds per measured run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds, bare then pane")
    parser.add_argument("--paced-connections", type=int, default=16)
    parser.add_argument("--paced-delay-ms", type=int, default=50)
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/api.py needs wrk (apt-get install wrk)")

    with bench_servers(DATABASE) as (admin_server, redis_url):
        asyncio.run(ensure_database(admin_server, DATABASE))
        owner_url = database_url(admin_server, user=server_user(admin_server), database=DATABASE)
        app_url = database_url(admin_server, user="pane_app", database=DATABASE)
        owners = asyncio.run(seed(owner_url))
        tokens = AccessTokens(SIGNING_KEY, ttl_seconds=3600)
        pane_headers = [
            {
                "Authorization": "Bearer "
                + tokens.issue(user_id=uuid.UUID(u), workspace_id=uuid.UUID(w), role="owner")
            }
            for u, w in owners
        ]
        bare_headers = [{"X-Workspace": w} for _, w in owners]
        plan = asyncio.run(explain(app_url, owners[0][1]))

        pool = max(4, options.connections // options.workers)
        pane_env = {
            "PANE_DATABASE_URL": app_url,
            "PANE_REDIS_URL": redis_url,
            "PANE_TOKEN_SIGNING_KEY": SIGNING_KEY.decode(),
            "PANE_DATA_DIR": tempfile.mkdtemp(prefix="pane-bench-"),
            "PANE_DB_POOL_SIZE": str(pool),
            "PANE_LOG_LEVEL": os.environ.get("PANE_LOG_LEVEL", "INFO"),
        }
        bare_env = {"BARE_DATABASE_URL": owner_url, "BARE_POOL": str(pool)}
        results: dict[str, list[dict[str, float]]] = {"pane": [], "bare": []}
        paced: dict[str, list[dict[str, float]]] = {"pane": [], "bare": []}
        for _ in range(options.rounds):
            for name, target, env, headers in (
                ("bare", "bench.bare_app:app", bare_env, bare_headers),
                ("pane", "pane.app:create_app", pane_env, pane_headers),
            ):
                port = free_port()
                with server(target, port, options.workers, env):
                    wrk(port, headers, 3, options.connections)  # warm-up
                    results[name].append(wrk(port, headers, options.duration, options.connections))
                    paced[name].append(
                        wrk(
                            port,
                            headers,
                            options.duration,
                            options.paced_connections,
                            delay_ms=options.paced_delay_ms,
                        )
                    )
        report(results, paced, plan, options)


if __name__ == "__main__":
    main()
