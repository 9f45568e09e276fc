"""Once started, neither the API nor the worker leaves what startup built for the garbage
collector's full collections to walk (a full collection over a loaded pane stalled every
request in flight for ~200 ms), each in a fresh interpreter as an operator starts it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import Servers
from tests.processes import ROOT, pane_env

STARTS = {
    "api": """
from asgi_lifespan import LifespanManager
from pane.app import create_app

async def started():
    async with LifespanManager(create_app(get_settings())):
        report()
""",
    "worker": """
from pane.sync.worker import build_worker, stop_in_process

async def started():
    worker = build_worker(get_settings(), handle_signals=False)
    startup, ready = worker.on_startup, asyncio.Event()

    async def started_up(ctx):
        await startup(ctx)
        ready.set()

    worker.on_startup = started_up
    running = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(ready.wait(), 30)
    report()
    await stop_in_process(worker, running)
""",
}
REPORT = """
import asyncio, gc, json
from pane.config import get_settings

def report():
    print(json.dumps({
        "frozen": gc.get_freeze_count(),
        "walked_by_a_full_collection": len(gc.get_objects()),
    }))
"""


def _started(servers: Servers, process: str, **settings: str) -> dict[str, int]:
    """Start ``process`` in a fresh interpreter; what its heap looks like once started."""
    env = pane_env(servers, servers.data_dir / f"heap-{process}", **settings)
    script = REPORT + STARTS[process] + "\nasyncio.run(started())\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("process", sorted(STARTS))
def test_a_started_process_keeps_what_startup_built_out_of_full_collections(
    servers: Servers, process: str
) -> None:
    heap = _started(servers, process)
    # pane loaded is well over 100,000 tracked objects; a full collection walks what is new
    assert heap["frozen"] > 100_000
    assert heap["walked_by_a_full_collection"] < heap["frozen"] / 10


@pytest.mark.parametrize("process", sorted(STARTS))
def test_with_the_setting_off_a_started_process_freezes_nothing(
    servers: Servers, process: str
) -> None:
    heap = _started(servers, process, PANE_FREEZE_STARTUP_OBJECTS="false")
    assert heap["frozen"] == 0
    assert heap["walked_by_a_full_collection"] > 100_000
