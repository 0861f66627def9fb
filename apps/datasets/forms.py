from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.core import safejson
from apps.core.forms import StyledForm
from apps.datasets.exporting import EXPORT_FORMATS


class UploadForm(StyledForm):
    file = forms.FileField(help_text="CSV (any delimiter; UTF-8 or Latin-1), JSON Lines, a JSON array, or XLSX.")
    dataset = forms.ModelChoiceField(queryset=None, required=False, empty_label="A new dataset…", label="Import into")
    name = forms.CharField(max_length=100, required=False, label="New dataset's name")

    def __init__(self, *args, datasets=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = datasets

    def clean(self):
        data = super().clean()
        if not data.get("dataset") and not (data.get("name") or "").strip():
            self.add_error("name", "Name the new dataset, or choose an existing one.")
        return data


class ExportForm(StyledForm):
    format = forms.ChoiceField(choices=list(EXPORT_FORMATS.items()))
    prompt = forms.CharField(required=False, help_text="For the chat format: the prompt's name.")
    prompt_version = forms.IntegerField(required=False, min_value=1, help_text="Empty: the newest version.")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _from_text(text: str, like: Any, what: str) -> Any:
    """Text typed in a cell, turned back into the type of the value it replaces (JSON for non-strings)."""
    if like is None or isinstance(like, str):
        return text
    try:
        return safejson.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"{what}: not valid JSON ({exc.msg}); the old value was JSON.") from None


class RowForm(forms.Form):
    """One row in the inline editor: a field per input column, the expected output, metadata as JSON."""

    message = forms.CharField(max_length=500, required=False)

    def __init__(self, *args, columns: list[str], like: dict[str, Any] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.columns = columns
        self.like = like or {"input": {}, "expected": None, "metadata": {}}
        for index, column in enumerate(columns):
            self.fields[f"in-{index}"] = forms.CharField(required=False, label=column, strip=False)
        self.fields["expected"] = forms.CharField(required=False, strip=False)
        self.fields["metadata"] = forms.CharField(required=False)
        self.fields["extra"] = forms.CharField(required=False, label="More inputs (JSON object)")

    @classmethod
    def initial_for(cls, record: dict[str, Any], columns: list[str]) -> dict[str, str]:
        initial = {f"in-{i}": _as_text(record["input"].get(c)) for i, c in enumerate(columns)}
        initial["expected"] = _as_text(record.get("expected"))
        initial["metadata"] = (
            json.dumps(record.get("metadata") or {}, ensure_ascii=False) if record.get("metadata") else ""
        )
        return initial

    def clean(self):
        data = super().clean()
        inputs: dict[str, Any] = {}
        errors = []
        for index, column in enumerate(self.columns):
            text = data.get(f"in-{index}", "")
            if text == "" and column not in self.like["input"]:
                continue
            try:
                inputs[column] = _from_text(text, self.like["input"].get(column), column)
            except forms.ValidationError as exc:
                errors.append(exc)
        extra = (data.get("extra") or "").strip()
        if extra:
            try:
                more = safejson.loads(extra)
            except json.JSONDecodeError as exc:
                more = None
                errors.append(forms.ValidationError(f"More inputs: not valid JSON ({exc.msg})."))
            if more is not None and not isinstance(more, dict):
                errors.append(forms.ValidationError("More inputs must be a JSON object of name to value."))
            elif more:
                inputs.update(more)
        expected_text = data.get("expected", "")
        try:
            expected = None if expected_text == "" else _from_text(expected_text, self.like.get("expected"), "expected")
        except forms.ValidationError as exc:
            errors.append(exc)
            expected = None
        metadata_text = (data.get("metadata") or "").strip()
        metadata: Any = {}
        if metadata_text:
            try:
                metadata = safejson.loads(metadata_text)
            except json.JSONDecodeError as exc:
                errors.append(forms.ValidationError(f"Metadata: not valid JSON ({exc.msg})."))
            if not isinstance(metadata, dict):
                errors.append(forms.ValidationError('Metadata must be a JSON object, e.g. {"split": "test"}.'))
                metadata = {}
        if errors:
            raise forms.ValidationError(errors)
        data["record"] = {"input": inputs, "expected": expected, "metadata": metadata}
        return data
