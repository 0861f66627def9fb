"""The playground's forms: variable rows typed from the prompt's specs, and a result as a dataset row."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.core.forms import StyledForm
from apps.prompts import sandbox


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
