"""Start the web server and a real Celery worker beside it: the embedded default behind `make run`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


class Command(BaseCommand):
    help = "Run the development web server together with a Celery worker (and beat) on the configured broker."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--no-worker", action="store_true", help="Do not start a Celery worker.")
        parser.add_argument("--no-local-models", action="store_true", help="Do not install or start local models.")

    def handle(self, *args, host: str, port: int, no_worker: bool, no_local_models: bool = False, **options):
        # runserver exits the process outright when its port is taken, which would orphan the worker: check first.
        if not _port_is_free(host, port):
            raise CommandError(f"Port {port} on {host} is in use: stop what runs there, or choose another (PORT=8001).")
        # A SIGTERM (a supervisor, `kill`) ends the server like Ctrl-C, so the children below are stopped too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        worker = None
        local_models = None
        if getattr(settings, "LOCAL_MODELS", False) and not no_local_models:
            # Installs (minutes the first time) and serves the local model in the background; see README.
            log = (settings.DATA_DIR / "local_models.log").open("a")
            local_models = subprocess.Popen(
                [sys.executable, "manage.py", "local_models", "up"], cwd=settings.BASE_DIR, stdout=log, stderr=log
            )
            completion = getattr(settings, "LOCAL_MODEL_COMPLETION", "")
            self.stdout.write(
                f"Local model{f's (chat and {completion})' if completion else ''}: installing/starting in the "
                f"background (pid {local_models.pid}); progress on the Models page, log in data/local_models.log. "
                "LOCAL_MODELS=false turns this off."
            )
        if not no_worker:
            worker = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "studio", "worker", "--beat",
                    "-Q", "interactive,experiments,ingest", "--concurrency", "2", "--loglevel", "WARNING",
                    "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
                ],
                cwd=settings.BASE_DIR,
            )  # fmt: skip
            self.stdout.write(f"Celery worker started (pid {worker.pid}).")
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"\nPrompt Studio is starting on {url}"))
        if settings.DEBUG:
            self.stdout.write(f"Log in as {settings.DEMO_USERNAME} / {settings.DEMO_PASSWORD}\n")
        try:
            call_command("runserver", f"{host}:{port}", use_reloader=False, use_threading=True)
        finally:
            _stop(local_models)
            _stop(worker)
