from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms

from apps.core import safejson
from apps.core.forms import StyledForm
from apps.experiments import evaluators


def _json_object(text: str, what: str) -> dict[str, Any]:
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = safejson.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"{what}: not valid JSON ({exc.msg}, column {exc.colno}).") from None
    if not isinstance(value, dict):
        raise forms.ValidationError(f"{what} must be a JSON object.")
    return value


class ExperimentForm(StyledForm):
    name = forms.CharField(max_length=120, widget=forms.TextInput(attrs={"autofocus": True}))
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    dataset_version = forms.ChoiceField(label="Dataset version")
    repeats = forms.IntegerField(
        min_value=1, max_value=100, initial=1, help_text="Independent calls per row and variant."
    )
    budget = forms.CharField(required=False, label="Budget (USD)", help_text="Optional: stop when this much is spent.")

    def __init__(self, *args, dataset_versions: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset_version"].choices = [("", "Choose a dataset version")] + dataset_versions

    def clean_budget(self) -> Decimal | None:
        text = self.cleaned_data["budget"].strip().lstrip("$")
        if not text:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise forms.ValidationError("Enter an amount such as 2.50.") from None
        if value <= 0:
            raise forms.ValidationError("A budget must be above zero.")
        return value


class VariantForm(StyledForm):
    name = forms.CharField(max_length=20)
    prompt_version = forms.ChoiceField(label="Prompt version")
    endpoint = forms.ChoiceField(label="Model endpoint")
    params = forms.CharField(
        required=False,
        label="Parameter overrides",
        widget=forms.TextInput(attrs={"placeholder": '{"temperature": 0.2}', "class": "font-monospace"}),
    )

    def __init__(self, *args, prompt_versions, endpoints, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["prompt_version"].choices = [("", "—")] + prompt_versions
        self.fields["endpoint"].choices = [("", "—")] + endpoints

    def clean_params(self) -> dict[str, Any]:
        return _json_object(self.cleaned_data["params"], "Parameter overrides")


class EvaluatorForm(StyledForm):
    """An evaluator row; a row left without a kind, name and parameters is no evaluator (an experiment may
    have none), and a removed row (DELETE) is skipped."""

    kind = forms.ChoiceField(
        choices=[("", "—")] + [(k.key, k.title) for k in evaluators.KINDS.values()], required=False
    )
    name = forms.CharField(max_length=60, required=False)
    params = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"class": "font-monospace", "placeholder": "{}"})
    )

    def clean_params(self) -> dict[str, Any]:
        return _json_object(self.cleaned_data["params"], "Evaluator parameters")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("kind") and (data.get("name") or data.get("params")):
            self.add_error("kind", "Choose a kind for this evaluator, or remove the row.")
        return data


class _BaseVariantFormSet(forms.BaseFormSet):
    def get_form_kwargs(self, index):
        return dict(self.form_kwargs)


VariantFormSet = forms.formset_factory(VariantForm, formset=_BaseVariantFormSet, extra=0, min_num=1, max_num=12)
EvaluatorFormSet = forms.formset_factory(EvaluatorForm, extra=0, max_num=20, can_delete=True)
