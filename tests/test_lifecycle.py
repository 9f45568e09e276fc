"""Stopping pane as operators do (Ctrl-C, kill, docker stop) leaves nothing running: real
subprocesses on empty data folders."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.processes import Panes, embedded_servers_in, free_port, stop

READY = {
    "pane": '"pane is up"',
    "serve": "Application startup complete",
    "worker": "Starting worker",
    "demo": "first sync",  # stopped while it sets itself up
}


def _arguments(command: str) -> list[str]:
    if command == "pane":
        return []
    if command == "demo":
        return ["demo", "--leads", "40", "--live", "300", "--simulator-port", str(free_port())]
    return [command]


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
