"""The `pane` command as an operator or a newcomer runs it: real subprocesses."""

from __future__ import annotations

import asyncio
import signal
import socket
from contextlib import closing

import httpx

from tests.factories import unique_email
from tests.loopback import free_port
from tests.processes import Panes, clean_env, embedded_servers_in, run_pane, stop


def test_openapi_document_is_in_sync_with_the_code():
    result = run_pane("openapi", "--check", env=clean_env())
    assert result.returncode == 0, result.stderr + result.stdout


def test_pane_with_no_configuration_starts_embedded_servers_and_stops_them(tmp_path):
    port = free_port()
    with Panes(tmp_path, PANE_PORT=str(port)) as panes:
        pane = panes.start()
        pane.expect('"pane is up"')
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.json() == {"status": "ready"}
        signup = httpx.post(
            f"http://127.0.0.1:{port}/v1/auth/signup",
            json={
                "email": unique_email(),
                "password": "a long enough password",
                "name": "First Reseller",
                "workspace_name": "Reseller",
            },
        )
        assert signup.status_code == 201, signup.text
        code, output = stop(pane, signal.SIGINT)
        assert code == 130, output
        assert "Traceback" not in output
        assert (tmp_path / "postgres" / "PG_VERSION").exists()
        assert embedded_servers_in(tmp_path) == {}


def test_user_create_then_login_through_the_api(servers, tmp_path):
    email = unique_email("cli")
    env = clean_env(
        **servers.env(),
        PANE_DATA_DIR=str(tmp_path),
        PANE_NEW_PASSWORD="cli password 1234",
    )
    created = run_pane(
        "user", "create", "--email", email, "--name", "Ops", "--workspace", "Ops Reseller", env=env
    )
    assert created.returncode == 0, created.stderr
    assert "created user" in created.stdout
    again = run_pane(
        "user", "create", "--email", email.upper(), "--name", "Ops", "--workspace", "X", env=env
    )
    assert again.returncode == 1
    assert "error: an account with email" in again.stderr
    assert "Traceback" not in again.stderr


async def test_vendor_key_is_printed_once_and_authenticates(servers, tmp_path, http):
    env = clean_env(
        **servers.env(),
        PANE_DATA_DIR=str(tmp_path),
    )
    issued = await asyncio.to_thread(
        run_pane, "vendors", "key", "--vendor", "cisco", "--name", "cisco-integration", env=env
    )
    assert issued.returncode == 0, issued.stderr
    key = issued.stdout.strip().splitlines()[-1]
    assert key.startswith("pane_")
    me = await http.get("/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200, me.text
    assert me.json()["kind"] == "vendor"
    assert me.json()["permissions"] == ["changes:read", "content:read", "leads:read", "links:read"]


def test_operator_refusals_are_one_line_not_a_traceback(servers, tmp_path):
    env = clean_env(
        **servers.env(),
        PANE_DATA_DIR=str(tmp_path),
    )
    duplicate = run_pane("vendors", "add", "--slug", "cisco", "--name", "Cisco again", env=env)
    unknown = run_pane("vendors", "key", "--vendor", "no-such-vendor", env=env)
    unreachable = run_pane(
        "migrate", env={**env, "PANE_MIGRATION_DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}
    )
    for result, message in (
        (duplicate, "error: the catalog already has a vendor with slug 'cisco'"),
        (unknown, "error: no vendor with slug 'no-such-vendor'"),
        (unreachable, "error: cannot reach the database"),
    ):
        assert result.returncode == 1, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_operator_commands_migrate_the_embedded_database_they_start(tmp_path):
    env = clean_env(PANE_DATA_DIR=str(tmp_path), PANE_LOG_LEVEL="WARNING")
    added = run_pane("vendors", "add", "--slug", "first-vendor", "--name", "First", env=env)
    assert added.returncode == 0, added.stderr
    assert "added vendor" in added.stdout


def test_pane_demo_links_every_simulated_vendor_syncs_and_prints_the_summary(tmp_path):
    port, vendors_port = free_port(), free_port()
    environment = {"PANE_PORT": str(port), "PANE_LOG_LEVEL": "WARNING", "COLUMNS": "120"}
    with Panes(tmp_path, **environment) as panes:
        demo = ("demo", "--leads", "40", "--live", "300", "--simulator-port", str(vendors_port))
        pane = panes.start(*demo)
        pane.expect("pane is live")
        shown = pane.before
        rows = {
            cells[0]: cells[1:]
            for cells in (
                [cell.strip() for cell in line.strip("│┃ \n").split("│")]
                for line in shown.splitlines()
            )
            if len(cells) == 6
        }
        assert rows["Acme Networks"][:4] == ["40", "4", "6", "21"], shown
        assert rows["Globex Security"][0] == "40", shown
        assert rows["Initech Cloud"][0] == "40", shown
        assert rows["Northwind Distribution"][2] == "6", shown
        assert all(cells[4].startswith("succeeded") for cells in rows.values()), shown

        login = httpx.post(
            f"http://127.0.0.1:{port}/v1/auth/login",
            json={"email": "demo@pane.example", "password": "pane-demo-password"},
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        compare = httpx.get(
            f"http://127.0.0.1:{port}/v1/price-items/compare?sku=FW-200", headers=headers
        ).json()["items"]
        assert len(compare) == 2  # Acme's own price and Northwind's, best margin first
        assert float(compare[0]["margin_pct"]) >= float(compare[1]["margin_pct"])
        code, output = stop(pane, signal.SIGINT)
        assert code == 130, output
        assert "Traceback" not in output  # Ctrl-C stops everything cleanly
        assert embedded_servers_in(tmp_path) == {}


def test_a_taken_port_is_one_line_before_anything_starts(tmp_path):
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(PANE_DATA_DIR=str(tmp_path), PANE_PORT=str(port))
        plain = run_pane(env=env)
        demo = run_pane("demo", env=env)
        vendors = run_pane("demo", "--simulator-port", str(port), env={**env, "PANE_PORT": "0"})
    for result, hint in ((plain, "PANE_PORT"), (demo, "PANE_PORT"), (vendors, "--simulator-port")):
        assert result.returncode == 1
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # no traceback
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
        assert hint in result.stderr
    assert not (tmp_path / "postgres").exists()  # refused before the embedded servers started
