"""A real studio web server in a subprocess (gunicorn), against the test database, for tests across processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StudioServer:
    """gunicorn serving the studio on 127.0.0.1; stop() and start() again on the same port."""

    def __init__(self, env: dict[str, str] | None = None, port: int | None = None, threads: int = 4):
        self.port = port or free_port()
        self.threads = threads
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "STUDIO_DATA_DIR": str(settings.DATA_DIR),
            "API_THROTTLE_RATE": "off",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StudioServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "studio.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--threads", str(self.threads), "--log-level", "warning"],
            cwd=settings.BASE_DIR,
            env=self.env,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"The studio server exited with {self.process.returncode} while starting.")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/", timeout=1):  # noqa: S310 - loopback
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("The studio server did not answer within 30 seconds.") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.process = None
