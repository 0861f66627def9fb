"""Install, start, stop and inspect the local model server (llama-cpp-python, OpenAI-compatible)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.providers import local_models


class Command(BaseCommand):
    help = (
        "install: build llama-cpp-python and fetch the verified model; start: serve it in the background; "
        "up: install if needed, then serve in the foreground (what `make run` starts); stop; status."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["install", "start", "up", "stop", "status"])
        parser.add_argument("--port", type=int, default=None, help="default: LOCAL_MODEL_PORT")

    def handle(self, *args, action: str, port: int | None, **options):
        port = port or settings.LOCAL_MODEL_PORT
        try:
            getattr(self, f"_{action}")(port)
        except local_models.LocalModelError as exc:
            raise CommandError(str(exc)) from None

    def _install(self, port: int) -> None:
        timings = local_models.install()
        self.stdout.write(
            self.style.SUCCESS(
                f"Installed in {timings['total']:.1f} s (llama-cpp-python {timings['runtime']:.1f} s, "
                f"model {timings['model']:.1f} s): {local_models.model_path()}"
            )
        )

    def _already_serving(self, port: int) -> bool:
        try:
            local_models.wait_until_serving(port, timeout=1)
        except local_models.LocalModelError:
            return False
        return True

    def _start(self, port: int) -> None:
        if self._already_serving(port):
            self.stdout.write(f"A model server already answers on port {port}.")
            return
        local_models.write_status("starting", step="loading the model", progress=100)
        process = local_models.spawn_server(port, detach=True)
        try:
            local_models.wait_until_serving(port, process)
        except local_models.LocalModelError as exc:
            local_models.write_status("failed", step="start", message=str(exc))
            raise
        self._ready(process, port)
        self.stdout.write(
            self.style.SUCCESS(
                f"Serving {local_models.model_alias()} on {local_models.api_base(port)} (pid {process.pid})."
            )
        )

    def _ready(self, process, port: int) -> None:
        local_models.write_status(
            "ready", step="serving", pid=process.pid, port=port, api_base=local_models.api_base(port)
        )

    def _up(self, port: int) -> None:
        if not settings.LOCAL_MODELS:
            self.stdout.write("LOCAL_MODELS is false; not installing or starting a local model.")
            local_models.write_status("disabled", step="", message="Local models are off (LOCAL_MODELS=false).")
            return
        if self._already_serving(port):
            local_models.write_status("ready", step="serving", port=port, api_base=local_models.api_base(port))
            self.stdout.write(f"A model server already answers on port {port}.")
            return
        if not (local_models.runtime_installed() and local_models.model_path().exists()):
            self._install(port)
        local_models.write_status("starting", step="loading the model", progress=100)
        process = local_models.spawn_server(port)
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True
            if process.poll() is None:
                process.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            local_models.wait_until_serving(port, process)
        except local_models.LocalModelError as exc:
            if process.poll() is None:
                process.terminate()
            local_models.write_status("failed", step="start", message=str(exc))
            raise
        self._ready(process, port)
        self.stdout.write(f"Local model {local_models.model_alias()} ready on {local_models.api_base(port)}.")
        code = process.wait()
        if stopping:
            local_models.write_status("stopped", step="stopped", pid=None)
        else:
            message = f"the model server exited with {code}"
            local_models.write_status("failed", step="serving", pid=None, message=message)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

    def _stop(self, port: int) -> None:
        if local_models.stop_recorded_server():
            self.stdout.write("Stopped the local model server.")
        else:
            self.stdout.write("No local model server recorded as running.")

    def _status(self, port: int) -> None:
        status = local_models.read_status()
        ready, sentence = local_models.readiness()
        self.stdout.write(json.dumps({**status, "ready": ready, "summary": sentence,
                                      "checked_at": time.strftime("%H:%M:%S")}, indent=2))  # fmt: skip
