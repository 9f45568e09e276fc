"""pane's commands in real subprocesses, as an operator runs them, and what they leave running;
and a worker for the tests that need one, waiting on what it does."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from types import TracebackType

import pexpect
import psutil
from pexpect.popen_spawn import PopenSpawn

from tests.conftest import CREDENTIAL_KEY, Servers

ROOT = Path(__file__).resolve().parents[1]
EMBEDDED_SERVERS = ("postgres", "redis-server")
STOP_SECONDS = 10


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANE_")}
    env.update(extra)
    return env


def run_pane(
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


def stop(pane: PopenSpawn, signum: signal.Signals) -> tuple[int, str]:
    """Send the signal; pane's exit code (it must exit within seconds) and all it printed."""
    pane.kill(signum)
    code = pane.proc.wait(timeout=STOP_SECONDS)
    pane.expect(pexpect.EOF)
    return code, pane.logfile.getvalue()


def embedded_servers_in(data_dir: Path) -> dict[int, str]:
    """The names of the PostgreSQL and Redis processes running on data_dir (their command line
    or working directory is in it), by pid."""
    folder = data_dir.resolve()
    found = {}
    for process in psutil.process_iter(["name", "cmdline", "cwd", "status"]):
        if process.info["name"] not in EMBEDDED_SERVERS:
            continue
        if process.info["status"] == psutil.STATUS_ZOMBIE:  # gone, waiting for init to reap it
            continue
        arguments = [Path(argument) for argument in process.info["cmdline"] or []]
        places = [*arguments, Path(process.info["cwd"] or "/")]
        if any(place.is_relative_to(folder) for place in places):
            found[process.pid] = process.info["name"]
    return found


class Panes:
    """pane commands started in subprocesses on one data folder, their output (stdout and
    stderr) read as it comes. On exit whatever is still running, pane or its embedded servers,
    is killed, so that a failing test leaves nothing behind."""

    def __init__(self, data_dir: Path, **environment: str) -> None:
        self.data_dir = data_dir
        self.env = clean_env(PANE_DATA_DIR=str(data_dir), **environment)
        self.started: list[PopenSpawn] = []

    def start(self, *args: str) -> PopenSpawn:
        pane = PopenSpawn(
            [sys.executable, "-m", "pane", *args],
            env=self.env,
            cwd=ROOT,
            encoding="utf-8",
            timeout=90,
            logfile=io.StringIO(),
        )
        self.started.append(pane)
        return pane

    def __enter__(self) -> Panes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for pane in self.started:
            if pane.proc.poll() is None:
                pane.kill(signal.SIGKILL)
        for pid in embedded_servers_in(self.data_dir):
            with suppress(ProcessLookupError):  # gone since
                os.kill(pid, signal.SIGKILL)
        for pane in self.started:
            with pane.proc:  # closes the pipes PopenSpawn leaves open, once it has read them out
                pane.expect(pexpect.EOF)


def pane_env(servers: Servers, data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a pane process started by a test: these servers, the suite's keys,
    its own data folder, quiet logs, and ``settings`` (``PANE_...`` variables) on top."""
    return {
        **os.environ,
        **servers.env(),
        "PANE_DATA_DIR": str(data_dir),
        "PANE_CREDENTIAL_KEYS": CREDENTIAL_KEY,
        "PANE_TOKEN_SIGNING_KEY": "test-signing-key-" + "x" * 32,
        "PANE_LOG_LEVEL": "WARNING",
        **settings,
    }


def start_worker(servers: Servers, redis_url: str) -> subprocess.Popen[bytes]:
    env = pane_env(
        servers,
        servers.data_dir / "worker",
        PANE_REDIS_URL=redis_url,
        PANE_ALLOW_PRIVATE_VENDOR_URLS="true",
        PANE_WORKER_SCHEDULE="false",
        PANE_SYNC_JOB_TIMEOUT_SECONDS="10",
        PANE_SYNC_LEASE_SECONDS="5",
        PANE_SYNC_RETRY_INITIAL_WAIT="0.01",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "pane", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
