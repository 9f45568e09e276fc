"""Stopping pane as operators do (Ctrl-C, kill, docker stop, kill -9) leaves nothing running,
and a start after kill -9 recovers what was left: real subprocesses on empty data folders (and,
in process, the worker that `pane` and `pane demo` run inside themselves)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq import func
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker

from pane.sync.worker import stop_in_process
from tests.loopback import free_port
from tests.processes import Panes, embedded_servers_in, run_pane, stop

READY = {
    "pane": '"pane is up"',
    "serve": "Application startup complete",
    "worker": "Starting worker",
    "demo": "first sync",  # stopped while it sets itself up
}
RECOVERED = "recovered the embedded servers of a pane that did not stop"


def _arguments(command: str) -> list[str]:
    if command == "pane":
        return []
    if command == "demo":
        return ["demo", "--leads", "40", "--live", "300", "--simulator-port", str(free_port())]
    return [command]


def _recovery_lines(output: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [record for record in records if record["event"] == RECOVERED]


def _pid(message: str) -> int:
    found = re.search(r"pid (\d+)", message)
    assert found, message
    return int(found[1])


@pytest.mark.parametrize(
    ("command", "signal_name", "exit_code"),
    [
        ("pane", "SIGTERM", 0),
        ("serve", "SIGTERM", 0),
        ("worker", "SIGTERM", 0),
        ("demo", "SIGTERM", 0),
        # Ctrl-C on pane and pane demo: tests/test_cli.py
        ("serve", "SIGINT", 0),
        ("worker", "SIGINT", 0),
    ],
)
def test_a_stop_signal_stops_the_command_and_its_embedded_servers(
    tmp_path: Path, command: str, signal_name: str, exit_code: int
) -> None:
    with Panes(tmp_path, PANE_PORT=str(free_port())) as panes:
        pane = panes.start(*_arguments(command))
        pane.expect(READY[command])
        assert sorted(set(embedded_servers_in(tmp_path).values())) == ["postgres", "redis-server"]
        code, output = stop(pane, signal.Signals[signal_name])
        assert code == exit_code, output
        assert "Traceback" not in output
        assert embedded_servers_in(tmp_path) == {}


def test_a_start_after_kill_9_takes_over_the_servers_left_running_then_stops_them(
    tmp_path: Path,
) -> None:
    with Panes(tmp_path, PANE_PORT=str(free_port())) as panes:
        killed = panes.start()
        killed.expect(READY["pane"])
        assert stop(killed, signal.SIGKILL)[0] == -signal.SIGKILL
        orphans = embedded_servers_in(tmp_path)
        assert sorted(set(orphans.values())) == ["postgres", "redis-server"]

        pane = panes.start()
        pane.expect(READY["pane"])
        code, output = stop(pane, signal.SIGTERM)
        assert code == 0, output
        (recovered,) = _recovery_lines(output)
        assert recovered["level"] == "warning"
        for server in ("postgres", "redis"):
            assert recovered[server].startswith("took over the server left running"), recovered
            assert _pid(recovered[server]) in orphans
        assert "Traceback" not in output
        assert embedded_servers_in(tmp_path) == {}


def test_a_start_after_kill_9_of_pane_and_its_servers_removes_their_stale_files(
    tmp_path: Path,
) -> None:
    with Panes(tmp_path, PANE_PORT=str(free_port())) as panes:
        killed = panes.start()
        killed.expect(READY["pane"])
        stop(killed, signal.SIGKILL)
        orphans = embedded_servers_in(tmp_path)
        assert sorted(set(orphans.values())) == ["postgres", "redis-server"]
        for pid in orphans:
            os.kill(pid, signal.SIGKILL)
        lock_file = tmp_path / "postgres" / "postmaster.pid"
        postmaster = int(lock_file.read_text().splitlines()[0])
        (redis_server,) = (pid for pid, name in orphans.items() if name == "redis-server")

        pane = panes.start()
        pane.expect(READY["pane"])
        code, output = stop(pane, signal.SIGTERM)
        assert code == 0, output
        (recovered,) = _recovery_lines(output)
        assert recovered["postgres"] == (
            f"removed the lock files of the server that ran as pid {postmaster}"
        )
        assert recovered["redis"] == (
            f"removed the pid file and socket of the server that ran as pid {redis_server}"
        )
        assert "Traceback" not in output
        assert embedded_servers_in(tmp_path) == {}


def test_a_command_run_beside_a_running_pane_leaves_the_servers_to_it(tmp_path: Path) -> None:
    port = free_port()
    with Panes(tmp_path, PANE_PORT=str(port)) as panes:
        pane = panes.start()
        pane.expect(READY["pane"])
        added = run_pane("vendors", "add", "--slug", "beside", "--name", "Beside", env=panes.env)
        assert added.returncode == 0, added.stderr
        assert RECOVERED not in added.stderr  # it joined the servers, nothing was left over
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.json() == {"status": "ready"}  # its database and Redis still run
        code, output = stop(pane, signal.SIGTERM)
        assert code == 0, output
        assert embedded_servers_in(tmp_path) == {}


# arq's close() closes its Redis pool with a call redis-py has deprecated
@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
async def test_a_worker_inside_pane_stops_cleanly_when_a_job_is_finishing_its_cancellation(
    servers,
) -> None:
    """SIGTERM to `pane demo` during a sync once ended it with a traceback and exit code 1:
    arq's close() waits for its cancelled jobs with a plain gather, and a job cancelled again
    while it was recording its cancellation ends cancelled itself."""
    started = asyncio.Event()

    async def slow(ctx: dict[str, object]) -> None:
        started.set()
        await asyncio.sleep(60)

    redis = RedisSettings.from_dsn(servers.redis_url)
    queue = f"pane-test-stop-{uuid.uuid4().hex}"
    worker = Worker(
        functions=[func(slow, name="slow")],
        redis_settings=redis,
        handle_signals=False,
        poll_delay=0.05,
        queue_name=queue,
    )
    running = asyncio.create_task(worker.async_run())
    pool = await create_pool(redis)
    try:
        await pool.enqueue_job("slow", _queue_name=queue)
        await asyncio.wait_for(started.wait(), 10)
        jobs = list(worker.tasks.values())
        for job in jobs:  # the stop reaches the job first through its own loop...
            job.cancel()
        for _ in range(6):  # ...and finds it again while it records that it was cancelled
            await asyncio.sleep(0)

        await stop_in_process(worker, running)

        assert running.done()
        assert all(job.done() for job in jobs)
        assert worker.tasks == {}
        assert await pool.exists(worker.health_check_key) == 0  # close() ran to its end
    finally:
        await pool.aclose()
