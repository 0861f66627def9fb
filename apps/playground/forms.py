"""The playground's forms: variable rows typed from the prompt's specs, and a result as a dataset row."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.core.forms import StyledForm
from apps.prompts import sandbox
from apps.prompts.content import ContentProblem


def variable_rows(specs: list[dict[str, Any]], post=None) -> list[dict[str, Any]]:
    """One form row per variable: its type, description, and the value to show (posted, else the sample)."""
    rows = []
    for spec in specs:
        name, kind = spec["name"], spec.get("type") or "string"
        if post is not None and f"var-{name}" in post:
            text = post.get(f"var-{name}")
        elif post is not None and kind == "boolean" and post.get("intent") == "run":
            text = "false"
        elif "sample" in spec:
            sample = spec["sample"]
            if isinstance(sample, str):
                text = sample
            elif isinstance(sample, bool):
                text = "true" if sample else "false"
            else:
                text = json.dumps(sample, ensure_ascii=False, indent=None)
        else:
            text = ""
        rows.append({"name": name, "type": kind, "description": spec.get("description", ""), "text": text})
    return rows


class VariableProblem(Exception):
    def __init__(self, name: str, message: str):
        self.name = name
        separator = " " if message.startswith("has ") else ": "
        super().__init__(f"variable '{name}'{separator}{message}")


def variable_values(specs: list[dict[str, Any]], post) -> dict[str, Any]:
    """Turn the posted texts into typed values; a bad one raises VariableProblem naming it."""
    values: dict[str, Any] = {}
    for row in variable_rows(specs, post):
        if f"var-{row['name']}" not in post:
            raise VariableProblem(row["name"], "has no value: fill in its field (the form now shows it)")
        try:
            values[row["name"]] = sandbox.coerce_sample(row["type"], row["text"] or "")
        except ValueError as exc:
            raise VariableProblem(row["name"], f"{exc} (expected a {row['type']})") from None
    return values


class ResultToDatasetForm(StyledForm):
    """A playground result as a new dataset row; the dataset is checked against the project by the view (404)."""

    dataset = forms.IntegerField(
        error_messages={"required": "Pick a dataset.", "invalid": "Pick a dataset from the list."},
        widget=forms.Select,
    )
    expected = forms.CharField(
        required=False,
        strip=False,
        label="Expected output",
        widget=forms.Textarea(attrs={"rows": 6, "class": "font-monospace", "spellcheck": "false"}),
        help_text="The model's output; edit it into the answer you expect. Empty: the row has no expected output.",
    )
    message = forms.CharField(
        max_length=500, required=False, label="Version message", help_text="Empty: names the run and the endpoint."
    )

    def __init__(self, *args, datasets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].widget.choices = [("", "Choose a dataset…")] + [
            (d.pk, f"{d.name} (v{d.newest_number})" if d.newest_number else f"{d.name} (no versions yet)")
            for d in datasets
        ]

    def clean_expected(self) -> str:
        # Browsers send a textarea's line breaks as CRLF; the model's output had LF.
        return self.cleaned_data["expected"].replace("\r\n", "\n")


# --- parameters per run --------------------------------------------------------------------------------

PARAM_FIELDS = ("temperature", "max_tokens", "top_p")


def param_rows(config: dict[str, Any], post=None) -> dict[str, str]:
    """The texts of the run's parameter fields: posted, else from the config (the version's, for a start)."""
    if post is not None and post.get("params_shown"):
        return {key: post.get(f"param-{key}", "") for key in (*PARAM_FIELDS, "stop", "tools", "schema")}
    response_format = config.get("response_format")
    schema = ""
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = json.dumps((response_format.get("json_schema") or {}).get("schema") or {}, indent=2)
    rows = {key: "" if config.get(key) is None else str(config[key]) for key in PARAM_FIELDS}
    rows["stop"] = "\n".join(config.get("stop") or [])
    rows["tools"] = json.dumps(config["tools"], indent=2) if config.get("tools") else ""
    rows["schema"] = schema
    return rows


def _json_field(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ContentProblem(f"{what} is not valid JSON: {exc}", field=what) from None


def run_config(post, base: dict[str, Any]) -> dict[str, Any]:
    """The model config of a run: the version's config with the parameters typed for this run (when the
    form showed them). Checked by build_content like any version's config."""
    if not post.get("params_shown"):
        return dict(base)
    config = {key: value for key, value in base.items() if key not in (*PARAM_FIELDS, "stop", "tools")}
    for key in PARAM_FIELDS:
        text = post.get(f"param-{key}", "").strip()
        if text:
            config[key] = text
    stops = [line for line in post.get("param-stop", "").replace("\r\n", "\n").split("\n") if line]
    if stops:
        config["stop"] = stops
    tools = post.get("param-tools", "").strip()
    if tools:
        config["tools"] = _json_field(tools, "tools")
    schema_text = post.get("param-schema", "").strip()
    if schema_text:
        schema = _json_field(schema_text, "output schema")
        config["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    elif isinstance(config.get("response_format"), dict) and config["response_format"].get("type") == "json_schema":
        config.pop("response_format")
    return config
