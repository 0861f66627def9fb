from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.core import safejson
from apps.core.forms import StyledForm
from apps.providers.models import EndpointKind, EndpointMode


class EndpointForm(StyledForm):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(
        choices=EndpointKind.choices,
        initial=EndpointKind.REMOTE,
        help_text="Simulated endpoints point at the local test server and are labelled as such everywhere.",
    )
    mode = forms.ChoiceField(choices=EndpointMode.choices, initial=EndpointMode.CHAT)
    model = forms.CharField(
        max_length=200,
        help_text="litellm model string: openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3, "
        "or openai/&lt;name&gt; with a base URL for any OpenAI-compatible server (vLLM, llama.cpp).",
    )
    api_base = forms.CharField(max_length=500, required=False, label="Base URL", help_text="e.g. http://host:8000/v1")
    api_key = forms.CharField(
        required=False,
        label="API key",
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted; never shown again. Leave empty to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored key")
    default_params = forms.CharField(
        required=False,
        label="Default parameters",
        widget=forms.Textarea(attrs={"rows": 2, "class": "font-monospace"}),
        help_text='JSON object, e.g. {"temperature": 0.2}. A prompt\'s own config overrides these.',
    )
    timeout_seconds = forms.FloatField(min_value=0.1, max_value=3600, initial=60, label="Timeout (s)")
    max_retries = forms.IntegerField(min_value=0, max_value=10, initial=3, label="Retries")
    max_concurrency = forms.IntegerField(min_value=1, max_value=1000, initial=4, label="Max concurrency")
    requests_per_minute = forms.IntegerField(min_value=1, required=False, label="Requests per minute")
    price_input_per_mtok = forms.DecimalField(
        min_value=0, max_digits=12, decimal_places=6, required=False, label="Input price / 1M tokens ($)"
    )
    price_output_per_mtok = forms.DecimalField(
        min_value=0, max_digits=12, decimal_places=6, required=False, label="Output price / 1M tokens ($)"
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def clean_default_params(self) -> dict[str, Any]:
        text = self.cleaned_data["default_params"].strip()
        if not text:
            return {}
        try:
            value = safejson.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
        if not isinstance(value, dict):
            raise forms.ValidationError('Give a JSON object, e.g. {"temperature": 0.2}.')
        return value

    @staticmethod
    def initial_for(endpoint) -> dict[str, Any]:
        """The form's initial values; the key is never among them."""
        return {
            "name": endpoint.name,
            "kind": endpoint.kind,
            "mode": endpoint.mode,
            "model": endpoint.model,
            "api_base": endpoint.api_base,
            "default_params": json.dumps(endpoint.default_params) if endpoint.default_params else "",
            "timeout_seconds": endpoint.timeout_seconds,
            "max_retries": endpoint.max_retries,
            "max_concurrency": endpoint.max_concurrency,
            "requests_per_minute": endpoint.requests_per_minute,
            "price_input_per_mtok": endpoint.price_input_per_mtok,
            "price_output_per_mtok": endpoint.price_output_per_mtok,
            "is_active": endpoint.is_active,
        }
