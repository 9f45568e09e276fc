"""Benchmark: pane's sync engine end to end against a raw COPY floor and a dlt peer, same rows,
same database, same run.

    python -m bench.sync [--leads 200000] [--skip-dlt] [--skip-4n] [--profile out.txt]

What is measured:

1. **pane end to end**: N leads from the simulated vendor Globex (``pane.demo.simulator``,
   served by uvicorn in a process of its own on 127.0.0.1, so its CPU is not pane's), read by
   the ``generic_rest`` connector with the demo manifest and written by
   ``pane.sync.engine.sync_link`` as the ``pane_app`` role under row-level security: pages
   prefetched and mapped in a worker thread, waiting pages joined up to the engine's
   ``WRITE_BATCH``, each batch COPY'd into staging, upserted with its events, counts and
   cursor in one transaction, two batches at once (``PAGES_IN_FLIGHT``). It is the link's
   first sync: everything is read, nothing swept. The sync runs in a child process of its
   own, so its peak RSS (VmHWM) is pane's alone; it is measured at N and again at 4N (fresh
   workspace, link and simulator): a streaming sync keeps it flat.
2. **pane's write path alone**: the same leads as records built before the clock starts,
   written by ``write_page`` in batches of ``WRITE_BATCH``, as many at once as the engine
   writes: the floor the read side is measured against (end to end / write path).
3. **raw COPY floor**: the same N leads (same columns, ``raw`` jsonb included) built in memory
   first, then one ``copy_records_to_table`` into ``leads`` as the owner, into a fresh
   workspace: what PostgreSQL alone costs on this machine.
4. **dlt peer**: dlt's ``rest_api`` source paging through the same endpoint (500 a page) into
   the same database (a dataset of its own), ``loader_file_format="csv"``, timed end to end
   (extract, normalize, load), three times: ``append`` (its fastest: no key, a rerun doubles
   every row), ``merge`` on the vendor's lead id (keyed, like pane's upsert), and that merge
   into a table created beforehand with the seven indexes ``leads`` carries (the fair peer).

Prints records/s of each and the targets: pane end to end / its write path >= 0.75, pane /
the indexed dlt merge >= 1.5; pane's peak RSS at N and 4N and their ratio, the CPU count and
the PostgreSQL version.

Database: a fresh database ``pane_bench_sync`` on the server named by PANE_BENCH_DATABASE_URL
(a superuser URL) and Redis at PANE_BENCH_REDIS_URL, else embedded ones under
~/.cache/pane-bench. dlt is not a dependency of pane: ``pip install "dlt[postgres]"`` (or
pass ``--skip-dlt``). ``--profile FILE`` runs the N sync under ``py-spy record`` (raw
collapsed stacks; ``pip install py-spy``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from cryptography.fernet import Fernet

from bench.servers import bench_servers, database_url, free_port, fresh_database
from pane.connectors.records import Stream

DATABASE = "pane_bench_sync"
VENDOR = "globex"
ROOT = Path(__file__).resolve().parents[1]
LEAD_COLUMNS = [
    "workspace_id",
    "id",
    "vendor_id",
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "title",
    "country",
    "vendor_status",
    "score",
    "vendor_created_at",
    "vendor_updated_at",
    "raw",
]


# --- the simulated vendor, in a process of its own ------------------------------------------


def simulator_app() -> Any:
    """uvicorn factory: one big Globex of BENCH_SYNC_LEADS leads, the other vendors token."""
    from pane.demo.simulator import Simulator

    leads = int(os.environ["BENCH_SYNC_LEADS"])
    return Simulator(leads_per_vendor=1, leads={VENDOR: leads}).app


@contextmanager
def simulator(leads: int) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.sync:simulator_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            command,
            env={**os.environ, "BENCH_SYNC_LEADS": str(leads)},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 600  # seeding a few million leads takes a while
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the simulator did not start:\n{log.read()[-4000:]}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(20)


# --- database setup -------------------------------------------------------------------------


async def new_workspace(owner_url: str, label: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A workspace and a catalog vendor of its own; returns (workspace_id, vendor_id)."""
    workspace_id, vendor_id = uuid.uuid4(), uuid.uuid4()
    connection = await asyncpg.connect(owner_url)
    try:
        await connection.execute(
            "INSERT INTO workspaces (id, name) VALUES ($1, $2)", workspace_id, f"Bench {label}"
        )
        await connection.execute(
            "INSERT INTO vendors (id, slug, name, kind) VALUES ($1, $2, $3, 'vendor')",
            vendor_id,
            f"bench-{label}-{vendor_id.hex[:8]}",
            f"Globex Security ({label})",
        )
    finally:
        await connection.close()
    return workspace_id, vendor_id


async def new_link(owner_url: str, key: str, simulator_url: str, label: str) -> dict[str, str]:
    """A workspace linked to the simulated Globex, as ``POST /v1/links`` would store it."""
    from pane.demo.manifests import demo_link

    workspace_id, vendor_id = await new_workspace(owner_url, label)
    link = demo_link(VENDOR, simulator_url)
    link_id = uuid.uuid4()
    sealed = Fernet(key.encode()).encrypt(orjson.dumps(link["credentials"])).decode()
    connection = await asyncpg.connect(owner_url)
    try:
        await connection.execute(
            "INSERT INTO vendor_links"
            " (workspace_id, id, vendor_id, connector, config, credentials_encrypted)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
            workspace_id,
            link_id,
            vendor_id,
            link["connector"],
            orjson.dumps(link["config"]).decode(),
            sealed,
        )
    finally:
        await connection.close()
    return {"workspace_id": str(workspace_id), "link_id": str(link_id), "vendor_id": str(vendor_id)}


async def count_leads(owner_url: str, workspace_id: str) -> int:
    connection = await asyncpg.connect(owner_url)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM leads WHERE workspace_id = $1", uuid.UUID(workspace_id)
            )
        )
    finally:
        await connection.close()


# --- 1. pane, in a child process ------------------------------------------------------------


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _child_sync(job: dict[str, Any]) -> dict[str, Any]:
    """Runs in the child: one ``sync_link`` of the link, as a worker job would."""
    from arq.connections import ArqRedis

    from pane.config import Settings
    from pane.db.database import Database
    from pane.heap import freeze_startup_objects
    from pane.logs import configure_logging
    from pane.secrets import load_key_ring
    from pane.services.commits import follow_ups
    from pane.sync.engine import SyncDeps, sync_link

    settings = Settings(
        database_url=job["app_url"],
        redis_url=job["redis_url"],
        credential_keys=[job["key"]],
        data_dir=Path(job["data_dir"]),
        allow_private_vendor_urls=True,
        vendor_rate_limit="100000/second",
        log_level="WARNING",
    )
    configure_logging(settings.log_level, json=True)
    database = Database(job["app_url"], pool_size=4)
    redis = ArqRedis.from_url(job["redis_url"])
    database.after_commit = follow_ups(database, redis)  # as the worker does: streams wake up
    deps = SyncDeps(
        database=database, redis=redis, settings=settings, keyring=load_key_ring(settings)
    )
    freeze_startup_objects()  # as the worker does once started
    rss_before = _peak_rss_mb()
    try:
        started = time.perf_counter()
        results = await sync_link(
            deps,
            workspace_id=uuid.UUID(job["workspace_id"]),
            link_id=uuid.UUID(job["link_id"]),
            streams=["leads"],
            trigger="manual",
        )
        seconds = time.perf_counter() - started
    finally:
        await database.dispose()
        await redis.aclose()
    return {
        "seconds": seconds,
        "statuses": [(result.status, result.error) for result in results],
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


async def _child_write_path(job: dict[str, Any]) -> dict[str, Any]:
    """Runs in the child: pane's write path alone. The same leads, mapped to records before
    the clock starts, written in batches of the engine's ``WRITE_BATCH`` (the most it joins
    into one transaction: staging COPY, the upsert with its events), as many at once as the
    engine writes (``write_in_turn``), as pane_app under RLS."""
    from pane.connectors.records import LeadRecord, Page
    from pane.db.database import Database, workspace_scope
    from pane.sync.engine import WRITE_BATCH, pages_overlap, write_in_turn
    from pane.sync.targets import TARGETS
    from pane.sync.upsert import Turn, write_page

    records = [
        LeadRecord(
            external_id=row[3],
            first_name=row[4],
            last_name=row[5],
            email=row[6],
            phone=row[7],
            company=row[8],
            title=row[9],
            country=row[10],
            vendor_status=row[11],
            score=row[12],
            vendor_created_at=row[13],
            updated_at=row[14],
            raw=orjson.loads(row[15]),
        )
        for row in copy_rows(job["leads"], uuid.uuid4(), uuid.uuid4())
    ]
    workspace_id, vendor_id = uuid.UUID(job["workspace_id"]), uuid.UUID(job["vendor_id"])
    database = Database(job["app_url"], pool_size=2)
    run_id = uuid.UUID(job["run_id"])

    async def batches() -> AsyncIterator[Page]:
        for start in range(0, len(records), WRITE_BATCH):
            yield Page(Stream.LEADS, list(records[start : start + WRITE_BATCH]))

    async def write(batch: Page, turn: Turn) -> None:
        async with database.transaction(workspace_scope(workspace_id)) as tx:
            await write_page(
                tx,
                target=TARGETS[Stream.LEADS],
                records=batch.records,
                workspace_id=workspace_id,
                vendor_id=vendor_id,
                vendor_name="Globex Security",
                link_id=uuid.UUID(job["link_id"]),
                run_id=run_id,
                remember_seen=False,
                turn=turn,
            )

    try:
        started = time.perf_counter()
        await write_in_turn(batches(), write, overlap=pages_overlap)
        seconds = time.perf_counter() - started
    finally:
        await database.dispose()
    return {"seconds": seconds}


def child_main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    work = _child_write_path if job.get("write_path_only") else _child_sync
    result = asyncio.run(work(job))
    Path(job["result_file"]).write_text(json.dumps(result))


def _py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"


def run_pane(job: dict[str, Any], profile: str | None = None) -> dict[str, Any]:
    """One ``sync_link`` in a fresh interpreter; its timing and peak RSS."""
    with tempfile.TemporaryDirectory(prefix="pane-bench-sync-") as scratch:
        job = {
            **job,
            "data_dir": scratch,
            "result_file": os.path.join(scratch, "result.json"),
        }
        job_file = os.path.join(scratch, "job.json")
        Path(job_file).write_text(json.dumps(job))
        command = [sys.executable, "-m", "bench.sync", "--child-sync", job_file]
        if profile is not None:
            command = [
                _py_spy(),
                "record",
                "--idle",
                "--threads",
                "-r",
                "100",
                "-f",
                "raw",
                "-o",
                profile,
                "--",
                *command,
            ]
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if completed.returncode != 0 or not os.path.exists(job["result_file"]):
            raise RuntimeError(
                f"pane's sync failed ({completed.returncode}):\n"
                f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
            )
        result: dict[str, Any] = json.loads(Path(job["result_file"]).read_text())
    if "statuses" in result and result["statuses"] != [["succeeded", None]]:
        raise RuntimeError(f"pane's sync did not succeed: {result['statuses']}")
    return result


async def _new_run(owner_url: str, link: dict[str, str]) -> str:
    run_id = uuid.uuid4()
    connection = await asyncpg.connect(owner_url)
    try:
        await connection.execute(
            "INSERT INTO sync_runs (workspace_id, id, link_id, trigger, streams)"
            " VALUES ($1, $2, $3, 'manual', '{leads}')",
            uuid.UUID(link["workspace_id"]),
            run_id,
            uuid.UUID(link["link_id"]),
        )
    finally:
        await connection.close()
    return str(run_id)


def pane_write_path(urls: dict[str, str], leads: int) -> float:
    """pane's write path alone, into a workspace of its own (a second floor: what the engine's
    writing costs, without reading anything from a vendor)."""
    owner_url = urls["owner_url"]
    link = asyncio.run(new_link(owner_url, urls["key"], "http://127.0.0.1:9", "write-path"))
    run_id = asyncio.run(_new_run(owner_url, link))
    result = run_pane({**link, **urls, "run_id": run_id, "leads": leads, "write_path_only": True})
    written = asyncio.run(count_leads(owner_url, link["workspace_id"]))
    if written != leads:
        raise RuntimeError(f"the write path left {written} leads, not {leads}")
    return float(result["seconds"])


# --- 2. the raw COPY floor ------------------------------------------------------------------


def copy_rows(leads: int, workspace_id: uuid.UUID, vendor_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """The leads the simulator serves, as rows of ``leads``: built before the clock starts."""
    from pane.demo.simulator import Simulator

    simulator = Simulator(leads_per_vendor=1, leads={VENDOR: leads})
    globex = simulator.globex
    rows = []
    for lead in globex.data.by_change():
        raw = globex._lead(lead)
        rows.append(
            (
                workspace_id,
                uuid.uuid4(),
                vendor_id,
                lead.id,
                lead.first_name,
                lead.last_name,
                lead.email,
                lead.phone,
                lead.company,
                lead.title,
                lead.country,
                raw["lead_status"],
                lead.score,
                lead.created_at,
                lead.updated_at,
                orjson.dumps(raw).decode(),
            )
        )
    return rows


async def run_copy(owner_url: str, leads: int) -> float:
    workspace_id, vendor_id = await new_workspace(owner_url, "copy")
    rows = copy_rows(leads, workspace_id, vendor_id)
    connection = await asyncpg.connect(owner_url)
    try:
        started = time.perf_counter()
        await connection.copy_records_to_table("leads", records=rows, columns=LEAD_COLUMNS)
        seconds = time.perf_counter() - started
    finally:
        await connection.close()
    copied = await count_leads(owner_url, str(workspace_id))
    if copied != leads:
        raise RuntimeError(f"COPY left {copied} leads, not {leads}")
    return seconds


# --- 3. dlt ---------------------------------------------------------------------------------


# The destination dlt merges into for the fair comparison, indexed as ``leads`` is (six btree
# indexes, keys included, and the trigram search index), on dlt's own column names.
DLT_INDEXES = [
    "CREATE UNIQUE INDEX ON {table} (lead_ref)",
    "CREATE INDEX ON {table} (_dlt_id)",
    "CREATE INDEX ON {table} (org, lead_ref)",
    "CREATE INDEX ON {table} (country, lead_ref)",
    "CREATE INDEX ON {table} (lead_status, lead_ref)",
    "CREATE INDEX ON {table} (modified, lead_ref)",
    "CREATE INDEX ON {table} USING gin (lower(coalesce(first_name, '') || ' ' ||"
    " coalesce(surname, '') || ' ' || coalesce(contact_email, '') || ' ' ||"
    " coalesce(org, '')) gin_trgm_ops)",
]


def run_dlt(
    owner_url: str, simulator_url: str, leads: int, disposition: str, *, indexed: bool = False
) -> float:
    """dlt loading the same leads: ``append`` (its fastest: no keys, no dedup) or ``merge`` on
    the vendor's lead id (keyed like pane's upsert, so a rerun doubles nothing); with
    ``indexed``, merging into a table created and indexed like ``leads`` before the load (a
    first load of one lead creates dlt's table; the indexes go on; the load then merges)."""
    import dlt
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials
    from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
    from dlt.sources.rest_api import rest_api_source

    credentials = PostgresCredentials(owner_url)
    # dlt insists on a password, even where the server trusts loopback connections
    credentials.password = credentials.password or "trusted"
    if credentials.host is None:
        raise RuntimeError(
            "dlt reaches PostgreSQL over TCP only: set PANE_BENCH_DATABASE_URL, or --skip-dlt"
        )
    with tempfile.TemporaryDirectory(prefix="pane-bench-dlt-") as pipelines_dir:
        source = rest_api_source(
            {
                "client": {
                    "base_url": f"{simulator_url}/{VENDOR}/v1/",
                    "headers": {"x-api-key": "globex-demo-key"},
                    "paginator": PageNumberPaginator(
                        base_page=1, page_param="page", total_path="total_pages"
                    ),
                },
                "resources": [
                    {
                        "name": "leads",
                        "endpoint": {
                            "path": "leads",
                            "params": {"per_page": 500},
                            "data_selector": "results",
                        },
                        "write_disposition": disposition,
                        "primary_key": "lead_ref",
                    }
                ],
            }
        )
        pipeline = dlt.pipeline(
            pipeline_name="pane_bench_sync",
            pipelines_dir=pipelines_dir,
            destination=dlt.destinations.postgres(credentials=credentials),
            dataset_name=f"dlt_bench_{disposition}{'_indexed' if indexed else ''}",
            dev_mode=True,
            progress=None,
        )
        if indexed:
            pipeline.run(_first_lead(simulator_url), loader_file_format="csv")
            with pipeline.sql_client() as client:
                table = client.make_qualified_table_name("leads")
                for statement in DLT_INDEXES:
                    client.execute_sql(statement.format(table=table))
                client.execute_sql(f"DELETE FROM {table}")
        started = time.perf_counter()
        pipeline.run(source, loader_file_format="csv")
        seconds = time.perf_counter() - started
        with pipeline.sql_client() as client:
            [[loaded]] = client.execute_sql(
                f"SELECT count(*) FROM {client.make_qualified_table_name('leads')}"
            )
    if loaded != leads:
        raise RuntimeError(f"dlt loaded {loaded} leads, not {leads}")
    return float(seconds)


def _first_lead(simulator_url: str) -> Any:
    """dlt's table made from one lead of the same endpoint, before the indexes go on."""
    import dlt
    import httpx

    page = httpx.get(
        f"{simulator_url}/{VENDOR}/v1/leads",
        params={"per_page": 1},
        headers={"x-api-key": "globex-demo-key"},
    ).json()

    @dlt.resource(name="leads", write_disposition="merge", primary_key="lead_ref")
    def first() -> Any:
        yield page["results"]

    return first


# --- the run --------------------------------------------------------------------------------


def pane_sync(
    urls: dict[str, str],
    simulator_url: str,
    leads: int,
    *,
    profile: str | None = None,
) -> dict[str, Any]:
    owner_url = urls["owner_url"]
    link = asyncio.run(new_link(owner_url, urls["key"], simulator_url, f"pane-{leads}"))
    result = run_pane({**link, **urls}, profile)
    synced = asyncio.run(count_leads(owner_url, link["workspace_id"]))
    if synced != leads:
        raise RuntimeError(f"pane's sync left {synced} leads, not {leads}")
    return result


def report(
    leads: int,
    pane: dict[str, Any],
    pane_4n: dict[str, Any] | None,
    write_path_seconds: float,
    copy_seconds: float,
    dlt_seconds: dict[str, float],
    version: str,
) -> None:
    verdict = {True: "met", False: "MISSED"}
    pane_rate = leads / pane["seconds"]
    print(
        f"\n{leads:,} leads, simulated Globex over loopback, the link's first sync;"
        f" {os.cpu_count()} CPUs"
        f" ({platform.machine()}), PostgreSQL {version}"
    )
    print(f"{'':36}{'seconds':>10}{'records/s':>12}")
    rows = [
        ("pane sync_link (end to end)", pane["seconds"]),
        ("pane write path alone", write_path_seconds),
        ("raw COPY into leads", copy_seconds),
        *((f"dlt rest_api (csv, {name})", seconds) for name, seconds in dlt_seconds.items()),
    ]
    for label, seconds in rows:
        print(f"{label:36}{seconds:>10.2f}{leads / seconds:>12,.0f}")
    floor = pane_rate / (leads / write_path_seconds)
    print(
        f"pane end to end / its write path: {floor:.2f} (target >= 0.75: {verdict[floor >= 0.75]})"
    )
    if "merge, indexed like leads" in dlt_seconds:
        peer = pane_rate / (leads / dlt_seconds["merge, indexed like leads"])
        print(
            f"pane / dlt merge into an indexed table: {peer:.2f}"
            f" (target >= 1.5: {verdict[peer >= 1.5]})"
        )
    print(f"pane / raw COPY: {pane_rate / (leads / copy_seconds):.2f}")
    for name in ("append", "merge"):
        if name in dlt_seconds:
            print(
                f"pane / dlt {name} (a table of its own, no indexes): "
                f"{pane_rate / (leads / dlt_seconds[name]):.2f}"
            )
    print(
        f"pane peak RSS at {leads:,}: {pane['peak_rss_mb']:.0f} MB"
        f" (before the sync: {pane['rss_before_mb']:.0f} MB)"
    )
    if pane_4n is not None:
        print(
            f"pane peak RSS at {4 * leads:,}: {pane_4n['peak_rss_mb']:.0f} MB"
            f" (before the sync: {pane_4n['rss_before_mb']:.0f} MB;"
            f" {4 * leads / pane_4n['seconds']:,.0f} records/s)"
        )
        ratio = pane_4n["peak_rss_mb"] / pane["peak_rss_mb"]
        print(f"RSS 4N/N:  {ratio:.2f} (flat is ~1.0)")


async def _server_version(owner_url: str) -> str:
    connection = await asyncpg.connect(owner_url)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--skip-dlt", action="store_true", help="no dlt comparison")
    parser.add_argument("--skip-4n", action="store_true", help="no 4N run (peak RSS at N only)")
    parser.add_argument(
        "--profile", metavar="FILE", help="py-spy raw stacks of pane's N sync into FILE"
    )
    parser.add_argument("--child-sync", metavar="JOB", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child_sync:
        child_main(options.child_sync)
        return
    if options.profile and not os.path.exists(_py_spy()):
        sys.exit("--profile needs py-spy (pip install py-spy)")

    with bench_servers(DATABASE) as (admin_server, redis_url):
        owner_url = asyncio.run(fresh_database(admin_server, DATABASE))
        app_url = database_url(admin_server, user="pane_app", database=DATABASE)
        version = asyncio.run(_server_version(owner_url))
        key = Fernet.generate_key().decode()
        leads = options.leads

        urls = {"owner_url": owner_url, "app_url": app_url, "redis_url": redis_url, "key": key}

        dlt_seconds: dict[str, float] = {}
        with simulator(leads) as simulator_url:
            print(f"pane: syncing {leads:,} leads...", flush=True)
            pane = pane_sync(urls, simulator_url, leads, profile=options.profile)
            print(f"  {pane['seconds']:.2f}s, peak RSS {pane['peak_rss_mb']:.0f} MB", flush=True)
            peers = [
                ("append", "append", False),
                ("merge", "merge", False),
                ("merge, indexed like leads", "merge", True),
            ]
            for name, disposition, indexed in () if options.skip_dlt else peers:
                print(f"dlt ({name}): loading {leads:,} leads...", flush=True)
                dlt_seconds[name] = run_dlt(
                    owner_url, simulator_url, leads, disposition, indexed=indexed
                )
                print(f"  {dlt_seconds[name]:.2f}s", flush=True)

        print(f"pane's write path alone, {leads:,} leads...", flush=True)
        write_path_seconds = pane_write_path(urls, leads)
        print(f"  {write_path_seconds:.2f}s", flush=True)
        print(f"raw COPY of {leads:,} leads...", flush=True)
        copy_seconds = asyncio.run(run_copy(owner_url, leads))
        print(f"  {copy_seconds:.2f}s", flush=True)

        pane_4n = None
        if not options.skip_4n:
            print(f"pane: syncing {4 * leads:,} leads (peak RSS at 4N)...", flush=True)
            with simulator(4 * leads) as simulator_url:
                pane_4n = pane_sync(urls, simulator_url, 4 * leads)
            print(
                f"  {pane_4n['seconds']:.2f}s, peak RSS {pane_4n['peak_rss_mb']:.0f} MB",
                flush=True,
            )
        report(leads, pane, pane_4n, write_path_seconds, copy_seconds, dlt_seconds, version)


if __name__ == "__main__":
    main()
