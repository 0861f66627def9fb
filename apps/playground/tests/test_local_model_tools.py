"""The playground's tool loop and structured output on the bundled local model (llama.cpp), when it is installed:
the model asks for the tool, reads the answer typed for it, and fills a JSON schema (sent to llama.cpp as its
grammar-bound json_object)."""

from __future__ import annotations

import json
import time

import pytest

from apps.playground.services import structured_output
from apps.providers import gateway, local_models
from apps.providers.gateway import guard
from apps.providers.tests.test_local_models import _free_port, _installed_home

WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}


@pytest.mark.skipif(
    _installed_home() is None,
    reason="the local model is not installed; run `.venv/bin/python manage.py local_models install` (CI does)",
)
def test_the_local_model_calls_a_tool_reads_the_answer_and_fills_a_schema(settings, tmp_path):
    installed = _installed_home()
    # A home of our own (the server's log and status go here), with the installed runtime and model in it.
    (tmp_path / "venv").symlink_to(installed / "venv")
    (tmp_path / "models").symlink_to(installed / "models")
    settings.LOCAL_MODELS_DIR, settings.LOCAL_MODEL_PATH = tmp_path, ""
    port = _free_port()
    process = local_models.spawn_server(port)
    try:
        local_models.wait_until_serving(port, process, timeout=180)
        local_models.write_status("ready", step="serving")
        guard.forget_readiness()
        alias = f"openai/{local_models.model_alias()}"
        target = gateway.Target(name="local", model=alias, api_base=local_models.api_base(port), timeout=300,
                                max_retries=0, own_server=True, local_model=alias)  # fmt: skip
        started = time.monotonic()
        question = [{"role": "user", "content": "What is the weather in Paris right now?"}]
        asked = gateway.chat(target, question, params={"tools": WEATHER, "max_tokens": 60, "temperature": 0})
        (call,) = asked.tool_calls
        answer = [
            *question,
            {"role": "assistant", "content": "", "tool_calls": asked.tool_calls},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21 C"},
        ]
        answered = gateway.chat(target, answer, params={"tools": WEATHER, "max_tokens": 60, "temperature": 0})
        response_format = {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}}
        filled = gateway.chat(
            target,
            [{"role": "user", "content": "The capital of France and its country, as JSON."}],
            params={"response_format": response_format, "max_tokens": 60, "temperature": 0},
        )
        seconds = time.monotonic() - started
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert asked.finish_reason == "tool_calls" and call["function"]["name"] == "get_weather"
    assert "paris" in json.loads(call["function"]["arguments"])["city"].lower()
    assert "sunny" in answered.output.lower()
    assert filled.request["response_format"] == {"type": "json_object", "schema": SCHEMA}
    parsed, errors = structured_output(filled.output, filled.request["response_format"])
    assert errors == [] and parsed["city"].lower() == "paris"
    print(f"local model tool loop and schema: 3 calls in {seconds:.1f} s")
