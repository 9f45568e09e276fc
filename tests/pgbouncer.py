"""pgbouncer in transaction-pooling mode between the suite and its PostgreSQL, when the suite
is run with PANE_TEST_PGBOUNCER=1: each transaction may land on any server connection, so a
tenant setting that outlived its transaction would show up in someone else's."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.loopback import free_port

# few server connections for many clients: transactions of different tenants share them
SERVER_CONNECTIONS = 4


class PgBouncer:
    def __init__(self, upstream_host: str, upstream_port: int, users: list[str]) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise RuntimeError("PANE_TEST_PGBOUNCER needs pgbouncer (apt-get install pgbouncer)")
        self.binary = binary
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="pane-pgbouncer-"))
        # pgbouncer refuses to run as root; it drops to nobody, who must read its files
        self.folder.chmod(0o755)
        (self.folder / "users.txt").write_text("".join(f'"{user}" ""\n' for user in users))
        (self.folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={upstream_host} port={upstream_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.folder / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {SERVER_CONNECTIONS}\n"
            "max_client_conn = 2000\n"
            "server_reset_query =\n"
        )
        self.log = (self.folder / "pgbouncer.log").open("w")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [self.binary]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]
        self.process = subprocess.Popen(
            [*command, str(self.folder / "pgbouncer.ini")], stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"pgbouncer did not start: {(self.folder / 'pgbouncer.log').read_text()}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # pgbouncer's safe shutdown
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
