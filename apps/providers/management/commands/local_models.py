"""Install, start, stop and inspect the local model servers (llama-cpp-python, OpenAI-compatible)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.providers import local_models
from apps.providers.local_models import ModelSpec


class _Stop(Exception):
    """SIGTERM or Ctrl-C while `up` installs or serves."""


class Command(BaseCommand):
    help = (
        "install: build llama-cpp-python and fetch the verified models; start: serve them in the background; "
        "up: install if needed, then serve in the foreground (what `make run` starts); stop; status. "
        "The chat model always, the completion model when LOCAL_MODEL_COMPLETION names it (or --model)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["install", "start", "up", "stop", "status"])
        parser.add_argument(
            "--port", type=int, default=None, help="default: LOCAL_MODEL_PORT (the completion model +1)"
        )
        parser.add_argument(
            "--model",
            choices=[spec.slug for spec in local_models.ALL_MODELS],
            default=None,
            help="only this model (default: every model turned on)",
        )

    def handle(self, *args, action: str, port: int | None, model: str | None, **options):
        self.base_port = port or settings.LOCAL_MODEL_PORT
        if model:
            self.specs = [spec for spec in local_models.ALL_MODELS if spec.slug == model]
        elif action == "stop":
            self.specs = list(local_models.ALL_MODELS)
        else:
            self.specs = local_models.enabled_models() or [local_models.DEFAULT_MODEL]
        try:
            getattr(self, f"_{action}")()
        except local_models.LocalModelError as exc:
            raise CommandError(str(exc)) from None

    def _port(self, spec: ModelSpec) -> int:
        return local_models.port_of(spec, self.base_port)

    def _install(self) -> None:
        for spec in self.specs:
            self._install_one(spec)

    def _install_one(self, spec: ModelSpec) -> None:
        timings = local_models.install(spec)
        if timings.get("already"):
            self.stdout.write(f"{spec.title} is already installed (checksum verified in {timings['total']:.1f} s).")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Installed {spec.title} in {timings['total']:.1f} s (llama-cpp-python {timings['runtime']:.1f} s, "
                f"model {timings['model']:.1f} s): {local_models.model_path(spec)}"
            )
        )

    def _already_serving(self, spec: ModelSpec) -> bool:
        try:
            local_models.wait_until_serving(self._port(spec), timeout=1, alias=local_models.model_alias(spec))
        except local_models.LocalModelError as exc:
            if "already serves" in str(exc):
                raise
            return False
        return True

    def _ready(self, spec: ModelSpec, pid: int | None) -> None:
        port = self._port(spec)
        extra = {"pid": pid} if pid else {}
        local_models.write_status(
            "ready", spec=spec, step="serving", port=port, api_base=local_models.api_base(port), **extra
        )

    def _serve(self, spec: ModelSpec, *, detach: bool) -> subprocess.Popen:
        """Start the model's server and wait until it answers; its status says starting, then ready or failed."""
        port = self._port(spec)
        local_models.write_status("starting", spec=spec, step="loading the model", progress=100)
        process = None
        try:
            process = local_models.spawn_server(port, spec, detach=detach)
            local_models.wait_until_serving(port, process, spec=spec, alias=local_models.model_alias(spec))
        except BaseException as exc:  # a failure, or a stop while it loads: never leave the server behind
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
            if isinstance(exc, local_models.LocalModelError):
                local_models.write_status("failed", spec=spec, step="start", message=str(exc))
            raise
        self._ready(spec, process.pid)
        return process

    def _start(self) -> None:
        for spec in self.specs:
            if self._already_serving(spec):
                self.stdout.write(f"A server of {spec.title} already answers on port {self._port(spec)}.")
                continue
            process = self._serve(spec, detach=True)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Serving {local_models.model_alias(spec)} on {local_models.api_base(self._port(spec))} "
                    f"(pid {process.pid})."
                )
            )

    def _up(self) -> None:
        """Install and serve each model in turn, the chat model first, and stay until told to stop.

        One model that fails to install or start is marked failed and the others go on; `up` fails only
        when none serves.
        """
        if not settings.LOCAL_MODELS:
            self.stdout.write("LOCAL_MODELS is false; not installing or starting a local model.")
            local_models.write_status("disabled", step="", message="Local models are off (LOCAL_MODELS=false).")
            return
        for spec in self.specs[1:]:  # its endpoint says so at once, not "not running", while the first installs
            local_models.write_status(
                "installing", spec=spec, step="waiting for the chat model to be ready", progress=0
            )
        servers: dict[ModelSpec, subprocess.Popen] = {}
        serving: list[ModelSpec] = []
        failures: list[str] = []
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            if not stopping:
                stopping = True
                raise _Stop

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            for spec in self.specs:
                try:
                    if self._already_serving(spec):
                        self._ready(spec, None)
                        serving.append(spec)
                        self.stdout.write(f"A server of {spec.title} already answers on port {self._port(spec)}.")
                        continue
                    if not (local_models.runtime_installed() and local_models.model_installed(spec)):
                        self._install_one(spec)
                    servers[spec] = self._serve(spec, detach=False)
                except local_models.LocalModelError as exc:
                    local_models.write_status("failed", spec=spec, step="install or start", message=str(exc))
                    failures.append(f"{spec.title}: {exc}")
                    self.stderr.write(f"{spec.title} is not served: {exc}")
                    continue
                serving.append(spec)
                port = self._port(spec)
                self.stdout.write(f"Local model {spec.slug} ready on {local_models.api_base(port)}.")
            if not serving:
                raise local_models.LocalModelError("; ".join(failures))
            while servers:
                for spec, process in list(servers.items()):
                    code = process.poll()
                    if code is not None:
                        del servers[spec]
                        local_models.write_status(
                            "failed",
                            spec=spec,
                            step="serving",
                            pid=None,
                            message=f"the model server exited with {code}",
                        )
                time.sleep(1)
        except _Stop:
            pass
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):  # on the way out already: a signal now changes nothing
                signal.signal(signum, lambda *_: None)
            for process in servers.values():
                if process.poll() is None:
                    process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
            if stopping:  # stopped while serving, loading or installing: none of ours runs any more
                for spec in self.specs:
                    unfinished = local_models.read_status(spec).get("state") in ("installing", "starting")
                    if spec in servers or (spec not in serving and unfinished):
                        local_models.write_status("stopped", spec=spec, step="stopped", pid=None)

    def _stop(self) -> None:
        for spec in self.specs:
            if local_models.stop_recorded_server(spec):
                self.stdout.write(f"Stopped the server of {spec.title}.")
            else:
                self.stdout.write(f"No server of {spec.title} recorded as running.")

    def _status(self) -> None:
        statuses = []
        for spec in self.specs:
            ready, sentence = local_models.readiness(spec)
            statuses.append(
                {"model": spec.slug, **local_models.read_status(spec), "ready": ready, "summary": sentence,
                 "checked_at": time.strftime("%H:%M:%S")}
            )  # fmt: skip
        self.stdout.write(json.dumps(statuses[0] if len(statuses) == 1 else statuses, indent=2))
