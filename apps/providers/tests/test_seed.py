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
