"""The ``pane`` command. With no arguments: migrate, then API and worker in one process, on
embedded PostgreSQL and Redis unless URLs are configured."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import structlog
import typer
import uvicorn
from sqlalchemy.exc import DBAPIError

from pane.config import Settings, get_settings
from pane.logs import configure_logging

app = typer.Typer(
    help="pane: one workspace for every vendor a reseller works with.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Credential encryption keys.")
users_app = typer.Typer(help="Accounts.")
vendors_app = typer.Typer(help="The vendor catalog and vendor API keys.")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="user")
app.add_typer(vendors_app, name="vendors")

OPENAPI_PATH = Path("openapi") / "openapi.json"


@contextmanager
def provisioned(settings: Settings) -> Iterator[Settings]:
    """Settings with every URL filled in, starting embedded servers for the missing ones.

    The embedded database is pane's own, so it is migrated here, whichever command runs first.
    The URLs are exported to the environment so that API worker processes inherit them, and so
    that settings read from now on in this process (uvicorn's app factory) see them.
    """
    from pane.db.embedded import EmbeddedServers

    servers: EmbeddedServers | None = None
    updates: dict[str, object] = {}
    if settings.embedded_database or settings.embedded_redis:
        servers = EmbeddedServers(settings.data_dir)
    try:
        if servers is not None and settings.embedded_database:
            servers.start_postgres()
            updates["database_url"] = servers.app_url
            updates["migration_database_url"] = servers.admin_url
        if servers is not None and settings.embedded_redis:
            servers.start_redis()
            updates["redis_url"] = servers.redis_url
        resolved = settings.model_copy(update=updates)
        for name in ("database_url", "migration_database_url", "redis_url"):
            value = getattr(resolved, name)
            if value:
                os.environ[f"PANE_{name.upper()}"] = value
        get_settings.cache_clear()
        if servers is not None and servers.recovered:
            structlog.get_logger("pane").warning(
                "recovered the embedded servers of a pane that did not stop", **servers.recovered
            )
        if settings.embedded_database:
            _migrate(resolved)
        yield resolved
    finally:
        if servers is not None:
            servers.stop()


@contextmanager
def refusals() -> Iterator[None]:
    """Operator commands report what they refused in one line, not a traceback."""
    from pane.errors import DomainError
    from pane.operator import OperatorRoleError
    from pane.secrets import CredentialDecryptError

    try:
        yield
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    except (CredentialDecryptError, OperatorRoleError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        typer.echo(f"error: the database refused: {reason}", err=True)
        raise typer.Exit(1) from exc
    except OSError as exc:
        typer.echo(f"error: cannot reach the database: {exc}", err=True)
        raise typer.Exit(1) from exc


def _refuse_taken_port(host: str, port: int, hint: str) -> None:
    """One line now, rather than tracebacks after the embedded servers have started."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            typer.echo(f"error: cannot listen on {host}:{port} ({exc.strerror}); {hint}", err=True)
            raise typer.Exit(1) from exc


def _migrate(settings: Settings) -> None:
    from pane.db.migrate import upgrade

    url = settings.migration_database_url or settings.database_url
    assert url
    asyncio.run(upgrade(url))


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


@app.callback(invoke_without_command=True)
def everything(ctx: typer.Context) -> None:
    """Run everything in one process: migrate, the API on 127.0.0.1:8000, and the worker."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings()
    _refuse_taken_port(settings.host, settings.port, "set PANE_PORT to use another port")
    started = time.perf_counter()
    with provisioned(settings) as resolved:
        if not settings.embedded_database:  # the embedded one was migrated when it started
            _migrate(resolved)
        asyncio.run(_serve_all(resolved, started))


async def _serve_all(settings: Settings, started: float) -> None:
    from pane.app import create_app
    from pane.sync.worker import build_worker, stop_in_process

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
        )
    )
    worker = build_worker(settings, handle_signals=False)
    worker_task = asyncio.create_task(worker.async_run())
    server_task = asyncio.create_task(server.serve())
    # uvicorn exposes readiness only as a flag
    while not server.started and not server_task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    structlog.get_logger("pane").info(
        "pane is up",
        url=f"http://{settings.host}:{settings.port}",
        docs=f"http://{settings.host}:{settings.port}/docs",
        seconds_to_ready=round(time.perf_counter() - started, 2),
        data_dir=str(settings.data_dir),
    )
    try:
        await server_task
    finally:
        await stop_in_process(worker, worker_task)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="API worker processes.")] = 1,
) -> None:
    """Serve the API only (scale out with several replicas or --workers)."""
    settings = _settings()
    with provisioned(settings) as resolved:
        if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pane-metrics-")
        uvicorn.run(
            "pane.app:create_app",
            factory=True,
            host=host or resolved.host,
            port=port or resolved.port,
            workers=workers,
            log_config=None,
            access_log=False,
        )


@app.command()
def worker() -> None:
    """Run background jobs (any number of workers may run)."""
    from pane.sync.worker import build_worker

    settings = _settings()
    with provisioned(settings) as resolved:
        build_worker(resolved).run()


def _check_models(settings: Settings) -> None:
    from alembic.util import CommandError

    from pane.db.migrate import check

    url = settings.migration_database_url or settings.database_url
    assert url
    try:
        drift = asyncio.run(check(url))
    except CommandError as exc:  # the database is not at the latest migration
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if drift:
        typer.echo("the models differ from the migrated database; a migration would", err=True)
        for operation in drift:
            typer.echo(f"  {operation}", err=True)
        raise typer.Exit(1)
    typer.echo("the models match the migrated database")


@app.command()
def migrate(
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Migrate nothing; fail if the ORM models differ from the migrated database "
            "(alembic check).",
        ),
    ] = False,
) -> None:
    """Apply database migrations (as the schema owner: PANE_MIGRATION_DATABASE_URL)."""
    settings = _settings()
    with provisioned(settings) as resolved, refusals():
        if check:
            _check_models(resolved)
            return
        if not settings.embedded_database:
            _migrate(resolved)
    typer.echo("database is at the latest migration")


def openapi_document() -> str:
    from pane.app import create_app

    spec = create_app(Settings(database_url="postgresql://unused", redis_url="redis://unused"))
    return json.dumps(spec.openapi(), indent=2, sort_keys=True) + "\n"


@app.command()
def openapi(
    output: Annotated[Path, typer.Option(help="Where to write the document.")] = OPENAPI_PATH,
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the file differs instead of writing it.")
    ] = False,
) -> None:
    """Write the OpenAPI document generated from the code."""
    document = openapi_document()
    if check:
        if not output.exists() or output.read_text() != document:
            typer.echo(f"{output} is out of date; run `pane openapi`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is up to date")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document)
    typer.echo(f"wrote {output}")


@keys_app.command("rotate")
def rotate_keys(
    generate: Annotated[
        bool,
        typer.Option(
            "--generate",
            help="First put a new key in front of the locally kept key ring "
            "(only when PANE_CREDENTIAL_KEYS is not set).",
        ),
    ] = False,
) -> None:
    """Re-encrypt every stored vendor credential with the newest key.

    With PANE_CREDENTIAL_KEYS: put the new key first, deploy, run this, then drop old keys.
    """
    from pane.operator import rotate_credentials
    from pane.secrets import prepend_local_credential_key

    settings = _settings()
    if generate:
        if settings.credential_keys:
            typer.echo(
                "--generate manages the local key ring; PANE_CREDENTIAL_KEYS is set", err=True
            )
            raise typer.Exit(2)
        prepend_local_credential_key(settings)
    with provisioned(settings) as resolved, refusals():
        rotated = asyncio.run(rotate_credentials(resolved))
    typer.echo(f"re-encrypted credentials of {rotated} links with the newest key")


@users_app.command("create")
def create_user(
    email: Annotated[str, typer.Option(help="Login email.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    workspace: Annotated[str, typer.Option(help="Name of the user's first workspace.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, envvar="PANE_NEW_PASSWORD"
        ),
    ],
) -> None:
    """Create an account with its own workspace (as owner)."""
    from pane.operator import create_account

    settings = _settings()
    if len(password) < 10:
        typer.echo("password must be at least 10 characters", err=True)
        raise typer.Exit(2)
    with provisioned(settings) as resolved, refusals():
        user_id, workspace_id = asyncio.run(
            create_account(resolved, email=email, name=name, workspace=workspace, password=password)
        )
    typer.echo(f"created user {user_id} owning workspace {workspace_id}")


@vendors_app.command("add")
def add_vendor(
    slug: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    kind: Annotated[str, typer.Option(help="vendor or distributor")] = "vendor",
    website: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add a vendor or distributor to the catalog."""
    from pane.operator import add_catalog_vendor

    settings = _settings()
    with provisioned(settings) as resolved, refusals():
        vendor_id = asyncio.run(
            add_catalog_vendor(resolved, slug=slug, name=name, kind=kind, website=website)
        )
    typer.echo(f"added vendor {vendor_id}")


@vendors_app.command("key")
def vendor_key(
    vendor: Annotated[str, typer.Option(help="The vendor's slug.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "integration",
) -> None:
    """Issue an API key for a vendor's integration; it is printed once."""
    from pane.operator import issue_vendor_key

    settings = _settings()
    with provisioned(settings) as resolved, refusals():
        key = asyncio.run(issue_vendor_key(resolved, vendor_slug=vendor, name=name))
    typer.echo(key)


@app.command()
def demo(
    leads: Annotated[
        int, typer.Option(min=0, help="Leads each simulated vendor starts with.")
    ] = 500,
    live: Annotated[
        float, typer.Option(min=1, help="Seconds between the simulated vendors' new leads.")
    ] = 20.0,
    simulator_port: Annotated[int, typer.Option(help="Port of the simulated vendors.")] = 8900,
) -> None:
    """Run pane with simulated vendors: a demo workspace links them, syncs, and stays live."""
    from pane.demo.run import DemoFailed, DemoOptions, run_demo

    # The simulated vendors listen on loopback, which links may reach only when allowed. The
    # terminal is the demo's: its progress and summary, not a log line per vendor request,
    # unless a log level is asked for.
    updates: dict[str, object] = {"allow_private_vendor_urls": True}
    if "PANE_LOG_LEVEL" not in os.environ:
        updates["log_level"] = "WARNING"
    settings = get_settings().model_copy(update=updates)
    configure_logging(settings.log_level, json=settings.log_json)
    _refuse_taken_port(settings.host, settings.port, "set PANE_PORT to use another port")
    _refuse_taken_port("127.0.0.1", simulator_port, "pass --simulator-port to use another port")
    with provisioned(settings) as resolved:
        if not settings.embedded_database:
            with refusals():
                _migrate(resolved)
        options = DemoOptions(
            simulator_port=simulator_port, leads_per_vendor=leads, live_interval=live
        )
        try:
            asyncio.run(run_demo(resolved, options))
        except DemoFailed as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc


@app.command()
def simulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8900,
    leads: Annotated[int, typer.Option(min=0, help="Leads each vendor starts with.")] = 500,
    live: Annotated[
        float, typer.Option(min=0, help="Seconds between new leads; 0 keeps the data still.")
    ] = 5.0,
) -> None:
    """Serve the fictional vendors (Acme, Globex, Initech, Northwind) for trying connectors."""
    from pane.demo.simulator import Simulator

    settings = _settings()
    fake = Simulator(leads_per_vendor=leads, live_interval=live or None)
    for vendor in fake.vendors:
        typer.echo(f"{vendor.name}: http://127.0.0.1:{port}{vendor.path}  {vendor.credentials}")
    uvicorn.run(
        fake.app, host="127.0.0.1", port=port, log_config=None, log_level=settings.log_level.lower()
    )


class Terminated(BaseException):
    """SIGTERM (kill, docker stop, systemd), raised like KeyboardInterrupt on Ctrl-C so that pane
    unwinds the same way: its servers shut down and the embedded ones are stopped."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def main() -> None:
    # Without a handler, SIGTERM kills the process on the spot, leaving the embedded servers
    # running; uvicorn and arq catch it while they run, but uvicorn then restores this handler
    # and raises the signal again once it has shut down.
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Terminated:
        sys.exit(0)  # a stop asked for, and done
