from __future__ import annotations

from django.core.management import call_command

from apps.providers.models import EndpointKind, ModelEndpoint


def test_it_gives_the_demo_the_local_model_and_no_simulated_endpoint(db, settings):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    endpoints = ModelEndpoint.objects.filter(project__slug="demo")
    assert [(e.kind, e.model) for e in endpoints] == [(EndpointKind.LOCAL, "openai/qwen2.5-coder-0.5b-instruct")]
    local = endpoints.get()
    assert local.api_base.startswith("http://127.0.0.1:") and local.price_input_per_mtok == 0


def test_it_adds_the_completion_model_only_when_it_is_turned_on_and_keeps_it_current(db, settings):
    settings.DEBUG, settings.LOCAL_MODEL_COMPLETION = True, ""
    call_command("seed_demo")
    assert not ModelEndpoint.objects.filter(project__slug="demo", mode="completion").exists()
    settings.LOCAL_MODEL_COMPLETION = "gemma-3-270m"
    call_command("seed_demo")
    gemma = ModelEndpoint.objects.get(project__slug="demo", name="Local Gemma 3 270M (completion)")
    assert (gemma.kind, gemma.mode, gemma.model) == (EndpointKind.LOCAL, "completion", "openai/gemma-3-270m")
    assert gemma.api_base == f"http://127.0.0.1:{settings.LOCAL_MODEL_PORT + 1}/v1"
    assert gemma.default_params == {"max_tokens": 128}
    settings.LOCAL_MODEL_PORT = 9100  # a new port: the endpoint follows it
    call_command("seed_demo")
    gemma.refresh_from_db()
    assert gemma.api_base == "http://127.0.0.1:9101/v1"
    assert ModelEndpoint.objects.filter(project__slug="demo", kind=EndpointKind.LOCAL).count() == 2
