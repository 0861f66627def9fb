"""Fixtures shared by every app's tests: users and projects, a real Celery worker, a real browser."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from apps.accounts.tests.factories import MembershipFactory, ProjectFactory

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

# The simulated OpenAI-compatible model server: model_server, sim_server, simulated_endpoint.
pytest_plugins = ["apps.providers.testing.fixtures"]


@pytest.fixture
def project(db):
    return ProjectFactory(name="Acme", slug="acme")


@pytest.fixture
def member(project):
    """make a user with a role in `project`: member("editor")."""

    def make(role: str = "editor", username: str | None = None):
        return MembershipFactory(project=project, role=role, **({"user__username": username} if username else {})).user

    return make


@pytest.fixture
def editor(member):
    return member("editor", "eddie")


@pytest.fixture
def client_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login


# --- A real Celery worker ------------------------------------------------------------------------


def _worker_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


class WorkerProcess:
    def __init__(
        self, tmp: Path, env_overrides: dict[str, str] | None = None, queues: str = "interactive,experiments,ingest"
    ):
        self.ready_file = tmp / f"worker-{time.monotonic_ns()}.ready"
        env = {
            **os.environ,
            "DATABASE_URL": _worker_database_url(),
            "STUDIO_DATA_DIR": str(settings.DATA_DIR),
            "STUDIO_WORKER_READY_FILE": str(self.ready_file),
            **(env_overrides or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "studio", "worker", "-Q", queues, "--concurrency", "2",
             "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
            cwd=settings.BASE_DIR,
            env=env,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"The Celery worker exited with {self.process.returncode} before it was ready.")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("The Celery worker did not become ready within 60 seconds.")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """kill -9 the worker and its pool children, as a crash would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            # TERM the main process only: it shuts its pool down itself (a TERM to the whole group stalls it).
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """Start real Celery worker processes against the test database; all are stopped after the test."""
    workers: list[WorkerProcess] = []
    _purge_embedded_broker()

    def start(**kwargs) -> WorkerProcess:
        worker = WorkerProcess(tmp_path, **kwargs)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def celery_worker(start_worker):
    return start_worker()


def _purge_embedded_broker() -> None:
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        shutil.rmtree(settings.BROKER_DIR / "queue", ignore_errors=True)
        (settings.BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    else:
        from studio.celery import app

        with app.connection_for_write() as conn:
            for queue in ("interactive", "experiments", "ingest"):
                conn.default_channel.queue_purge(queue)


# --- A real browser --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_instance():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}; browser tests did not run.")
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # playwright's loop runs beside the ORM in this thread
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser_instance, live_server):
    context = browser_instance.new_context(base_url=live_server.url)
    context.set_default_timeout(30_000)  # generous: CI machines are small and busy
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def login_page(page):
    def login(user, password: str = "password"):  # noqa: S107 - the factories' test password
        page.goto("/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    return login
