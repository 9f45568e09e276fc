"""The `pane` command as an operator or a newcomer runs it: real subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx

from tests.factories import unique_email

ROOT = Path(__file__).resolve().parents[1]


def _pane(
    *args: str, env: dict[str, str], input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pane", *args],
        env=env,
        cwd=ROOT,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANE_")}
    env.update(extra)
    return env


def test_openapi_document_is_in_sync_with_the_code():
    result = _pane("openapi", "--check", env=_clean_env())
    assert result.returncode == 0, result.stderr + result.stdout


def test_pane_with_no_configuration_starts_embedded_servers_and_stops_them(tmp_path):
    port = _free_port()
    env = _clean_env(PANE_DATA_DIR=str(tmp_path), PANE_PORT=str(port))
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "pane"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = None
        while time.monotonic() - started < 60 and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, "pane did not answer /readyz within 60 seconds"
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
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode()
    assert process.returncode in (0, 130), output
    assert (tmp_path / "postgres" / "PG_VERSION").exists()
    assert not (tmp_path / "postgres" / "postmaster.pid").exists(), (
        "embedded PostgreSQL still running"
    )
    assert '"pane is up"' in output


def test_user_create_then_login_through_the_api(servers, tmp_path):
    email = unique_email("cli")
    env = _clean_env(
        PANE_DATABASE_URL=servers.app_url,
        PANE_MIGRATION_DATABASE_URL=servers.admin_url,
        PANE_REDIS_URL=servers.redis_url,
        PANE_DATA_DIR=str(tmp_path),
        PANE_NEW_PASSWORD="cli password 1234",
    )
    created = _pane(
        "user", "create", "--email", email, "--name", "Ops", "--workspace", "Ops Reseller", env=env
    )
    assert created.returncode == 0, created.stderr
    assert "created user" in created.stdout
    again = _pane(
        "user", "create", "--email", email.upper(), "--name", "Ops", "--workspace", "X", env=env
    )
    assert again.returncode == 1
    assert "error: an account with email" in again.stderr
    assert "Traceback" not in again.stderr


async def test_vendor_key_is_printed_once_and_authenticates(servers, tmp_path, http):
    env = _clean_env(
        PANE_DATABASE_URL=servers.app_url,
        PANE_MIGRATION_DATABASE_URL=servers.admin_url,
        PANE_REDIS_URL=servers.redis_url,
        PANE_DATA_DIR=str(tmp_path),
    )
    issued = await asyncio.to_thread(
        _pane, "vendors", "key", "--vendor", "cisco", "--name", "cisco-integration", env=env
    )
    assert issued.returncode == 0, issued.stderr
    key = issued.stdout.strip().splitlines()[-1]
    assert key.startswith("pane_")
    me = await http.get("/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200, me.text
    assert me.json()["kind"] == "vendor"
    assert me.json()["permissions"] == ["changes:read", "content:read", "leads:read", "links:read"]


def test_operator_refusals_are_one_line_not_a_traceback(servers, tmp_path):
    env = _clean_env(
        PANE_DATABASE_URL=servers.app_url,
        PANE_MIGRATION_DATABASE_URL=servers.admin_url,
        PANE_REDIS_URL=servers.redis_url,
        PANE_DATA_DIR=str(tmp_path),
    )
    duplicate = _pane("vendors", "add", "--slug", "cisco", "--name", "Cisco again", env=env)
    unknown = _pane("vendors", "key", "--vendor", "no-such-vendor", env=env)
    unreachable = _pane(
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
    env = _clean_env(PANE_DATA_DIR=str(tmp_path), PANE_LOG_LEVEL="WARNING")
    added = _pane("vendors", "add", "--slug", "first-vendor", "--name", "First", env=env)
    assert added.returncode == 0, added.stderr
    assert "added vendor" in added.stdout


def test_pane_demo_links_every_simulated_vendor_syncs_and_prints_the_summary(tmp_path):
    port, vendors_port = _free_port(), _free_port()
    env = _clean_env(PANE_DATA_DIR=str(tmp_path), PANE_PORT=str(port), PANE_LOG_LEVEL="WARNING")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pane",
            "demo",
            "--leads",
            "40",
            "--live",
            "300",
            "--simulator-port",
            str(vendors_port),
        ],
        env={**env, "COLUMNS": "120"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline().decode()
            if not line:
                break
            lines.append(line)
            if "pane is live" in line:
                break
        shown = "".join(lines)
        assert "pane is live" in shown, shown
        rows = {
            cells[0]: cells[1:]
            for cells in (
                [cell.strip() for cell in line.strip("│┃ \n").split("│")] for line in lines
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
    finally:
        process.send_signal(signal.SIGINT)
        errors = process.communicate(timeout=60)[1].decode()
    assert process.returncode in (0, 130)
    assert "Traceback" not in errors, errors  # Ctrl-C stops everything cleanly


def test_a_taken_port_is_one_line_before_anything_starts(tmp_path):
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _clean_env(PANE_DATA_DIR=str(tmp_path), PANE_PORT=str(port))
        plain = _pane(env=env)
        demo = _pane("demo", env=env)
        vendors = _pane("demo", "--simulator-port", str(port), env={**env, "PANE_PORT": "0"})
    for result, hint in ((plain, "PANE_PORT"), (demo, "PANE_PORT"), (vendors, "--simulator-port")):
        assert result.returncode == 1
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # no traceback
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
        assert hint in result.stderr
    assert not (tmp_path / "postgres").exists()  # refused before the embedded servers started
