from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.core import safejson
from apps.core.forms import StyledForm
from apps.prompts import sandbox
from apps.prompts.content import CHAT_ROLES, ContentProblem
from apps.prompts.models import PromptKind


class PromptCreateForm(StyledForm):
    name = forms.CharField(
        max_length=100,
        help_text="The address of the prompt in the studio and the API, e.g. support-reply.",
        widget=forms.TextInput(attrs={"autofocus": True, "pattern": "[a-z0-9][a-z0-9._\\-]*"}),
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    tags = forms.CharField(required=False, help_text="Comma separated.")
    kind = forms.ChoiceField(choices=PromptKind.choices, initial=PromptKind.TEXT, widget=forms.RadioSelect)

    def clean_tags(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]


class PromptMetaForm(StyledForm):
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    tags = forms.CharField(required=False, help_text="Comma separated.")

    def clean_tags(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]


class MessageForm(StyledForm):
    role = forms.ChoiceField(choices=[(r, r) for r in CHAT_ROLES])
    content = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "class": "font-monospace"}), required=False)


MessageFormSet = forms.formset_factory(MessageForm, extra=0, can_order=True, can_delete=True, max_num=100)


class EditorForm(StyledForm):
    kind = forms.ChoiceField(choices=PromptKind.choices)
    template = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "class": "font-monospace", "spellcheck": "false"}), required=False
    )
    model = forms.CharField(max_length=200, required=False)
    temperature = forms.CharField(required=False)
    max_tokens = forms.CharField(required=False)
    top_p = forms.CharField(required=False)
    stop = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="One per line.")
    response_format = forms.ChoiceField(
        choices=[("text", "text"), ("json_object", "JSON object"), ("json_schema", "JSON schema")], required=False
    )
    response_schema = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}), required=False
    )
    extra = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "class": "font-monospace"}),
        required=False,
        help_text='Other parameters as a JSON object, e.g. {"seed": 7}.',
    )
    message = forms.CharField(max_length=500, required=False, label="What changed")
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)


def _json_field(text: str, field: str, expected: type) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        value = safejson.loads(text)
    except json.JSONDecodeError as exc:
        raise ContentProblem(f"{field}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})", field=field)
    if not isinstance(value, expected):
        raise ContentProblem(f"{field} must be a JSON object", field=field)
    return value


def config_from_form(data: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "model": data.get("model", "").strip(),
        "temperature": data.get("temperature", "").strip(),
        "max_tokens": data.get("max_tokens", "").strip(),
        "top_p": data.get("top_p", "").strip(),
        "stop": [line for line in data.get("stop", "").splitlines() if line.strip()],
        "extra": _json_field(data.get("extra", ""), "extra", dict),
    }
    response_format = data.get("response_format") or "text"
    if response_format == "json_schema":
        schema = _json_field(data.get("response_schema", ""), "response_schema", dict)
        if schema is None:
            raise ContentProblem("a JSON schema response format needs the schema", field="response_schema")
        config["response_format"] = {"type": "json_schema", "json_schema": schema}
    else:
        config["response_format"] = response_format
    return config


def config_to_form(config: dict[str, Any]) -> dict[str, Any]:
    response_format = config.get("response_format") or "text"
    schema = ""
    if isinstance(response_format, dict):
        schema = json.dumps(response_format.get("json_schema", {}), indent=2)
        response_format = response_format.get("type", "text")
    return {
        "model": config.get("model", ""),
        "temperature": config.get("temperature", ""),
        "max_tokens": config.get("max_tokens", ""),
        "top_p": config.get("top_p", ""),
        "stop": "\n".join(config.get("stop", [])),
        "response_format": response_format,
        "response_schema": schema,
        "extra": json.dumps(config["extra"]) if config.get("extra") else "",
    }


def messages_from_formset(formset) -> list[dict[str, str]]:
    """Messages in the order the user chose, without the deleted ones and blank new rows."""
    rows = []
    for position, form in enumerate(formset.forms):
        data = form.cleaned_data if form.is_valid() else {}
        if not data or data.get("DELETE"):
            continue
        if not data.get("content", "").strip() and not form.has_changed():
            continue
        order = data.get("ORDER")
        rows.append((order if order is not None else position + 1, position, data["role"], data.get("content", "")))
    rows.sort()
    return [{"role": role, "content": text} for _, _, role, text in rows]


def variable_specs_from_post(post) -> list[dict[str, Any]]:
    """The type, description and sample the user gave each variable row in the editor."""
    specs = []
    for name in [n for n in post.get("var_names", "").split(",") if n]:
        kind = post.get(f"var-{name}-type", "string")
        spec: dict[str, Any] = {
            "name": name,
            "type": kind if kind in sandbox.VARIABLE_TYPES else "string",
            "description": post.get(f"var-{name}-description", ""),
        }
        sample = post.get(f"var-{name}-sample")
        if sample is not None and (sample != "" or kind == "string"):
            spec["sample"] = sample
        specs.append(spec)
    return specs


def sample_as_text(spec: dict[str, Any]) -> str:
    if "sample" not in spec:
        return ""
    sample = spec["sample"]
    if isinstance(sample, str):
        return sample
    if isinstance(sample, bool):
        return "true" if sample else "false"
    return json.dumps(sample, ensure_ascii=False)
