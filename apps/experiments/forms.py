from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms

from apps.core import safejson
from apps.core.forms import StyledForm
from apps.experiments import evaluators, rubrics


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


# The fields of each evaluator kind, in groups the builder shows when their kind is chosen:
# (kinds, field names, help). A group serves every kind it names; the JSON box stays for anything else.
EVALUATOR_GROUPS: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
    (("exact_match",), ("exact_case_sensitive",), "Passes when the output equals the row's expected output "
     "(surrounding spaces ignored)."),
    (("contains", "not_contains"), ("contains_value", "contains_expected", "contains_case_sensitive"),
     "Looks for a text in the output: a fixed text, or each row's expected output."),
    (("regex",), ("regex_pattern", "regex_ignore_case"), "Passes when the pattern matches somewhere in the output."),
    (("valid_json",), (), "Passes when the output parses as JSON (a ```json fence is allowed). Nothing to set."),
    (("json_schema",), ("schema",), "Passes when the output is JSON that the schema accepts."),
    (("length",), ("length_min", "length_max", "length_unit"), "Passes when the output's length is within bounds."),
    (("numeric",), ("numeric_tolerance", "numeric_relative"),
     "Compares the first number in the output with the expected output's."),
    (("similarity", "llm_judge"), ("endpoint",), "The model endpoint that embeds (similarity) or judges."),
    (("similarity",), ("threshold",), "Cosine similarity of the output's and the expected output's embeddings."),
    (("llm_judge",), ("rubric_preset", "rubric", "judge_prompt", "scale_min", "scale_max", "pass_at"),
     "A model grades each output with the rubric on a scale; the score is scaled to 0..1."),
]  # fmt: skip


def _nonblank(value: Any) -> bool:
    return value not in (None, "")


def evaluator_params(kind: str, data: dict[str, Any], *, endpoints: dict[str, int]) -> dict[str, Any]:
    """An evaluator row's form fields as the evaluator's parameters (what the runner reads); pure.

    `endpoints` maps the project's endpoint names to their ids: the form picks an endpoint by name, the
    config keeps both (the id for the runner, the name for people).
    """
    params: dict[str, Any] = {}
    if kind == "exact_match":
        params["case_sensitive"] = bool(data.get("exact_case_sensitive"))
    elif kind in ("contains", "not_contains"):
        if data.get("contains_expected"):
            params["expected"] = True
        elif data.get("contains_value"):
            params["value"] = data["contains_value"]
        params["case_sensitive"] = bool(data.get("contains_case_sensitive"))
    elif kind == "regex":
        if data.get("regex_pattern"):
            params["pattern"] = data["regex_pattern"]
        params["ignore_case"] = bool(data.get("regex_ignore_case"))
    elif kind == "json_schema":
        if data.get("schema"):
            params["schema"] = data["schema"]
    elif kind == "length":
        for field, key in (("length_min", "min"), ("length_max", "max")):
            if _nonblank(data.get(field)):
                params[key] = data[field]
        params["unit"] = data.get("length_unit") or "chars"
    elif kind == "numeric":
        params["tolerance"] = data["numeric_tolerance"] if _nonblank(data.get("numeric_tolerance")) else 0.0
        params["relative"] = bool(data.get("numeric_relative"))
    if kind in ("similarity", "llm_judge") and data.get("endpoint") in endpoints:
        params["endpoint"] = data["endpoint"]
        params["endpoint_id"] = endpoints[data["endpoint"]]
    if kind == "similarity":
        params["threshold"] = data["threshold"] if _nonblank(data.get("threshold")) else 0.8
    elif kind == "llm_judge":
        if data.get("rubric_preset"):
            params["rubric_key"] = data["rubric_preset"]
        rubric = (data.get("rubric") or "").strip()
        if not rubric and data.get("rubric_preset") in rubrics.RUBRICS:
            rubric = rubrics.RUBRICS[data["rubric_preset"]].text
        if rubric:
            params["rubric"] = rubric
        for key in ("scale_min", "scale_max", "pass_at"):
            if _nonblank(data.get(key)):
                params[key] = data[key]
        if data.get("judge_prompt"):
            params["judge_prompt_version_id"] = int(data["judge_prompt"])
    return params


def evaluator_problems(kind: str, params: dict[str, Any]) -> list[str]:
    """What an evaluator's parameters lack before it can run, in words for the form."""
    problems = []
    if kind in ("contains", "not_contains") and not (params.get("value") or params.get("expected")):
        problems.append("Give the text to look for, or tick 'the row's expected output'.")
    if kind == "regex" and not params.get("pattern"):
        problems.append("Give the pattern.")
    if kind == "json_schema" and not isinstance(params.get("schema"), dict):
        problems.append("Give the JSON schema.")
    if kind == "length" and params.get("min") is None and params.get("max") is None:
        problems.append("Give a minimum, a maximum or both.")
    if kind in ("similarity", "llm_judge") and not params.get("endpoint_id"):
        problems.append("Choose the model endpoint.")
    if kind == "llm_judge":
        if not str(params.get("rubric", "")).strip():
            problems.append("Choose a rubric from the library or write one.")
        low, high = params.get("scale_min", 1), params.get("scale_max", 5)
        if high <= low:
            problems.append("The scale's top must be above its bottom.")
        elif not low <= params.get("pass_at", (low + high) / 2) <= high:
            problems.append("'Passes at' must be on the scale.")
    return problems


class EvaluatorForm(StyledForm):
    """An evaluator row: a kind and the fields of that kind (EVALUATOR_GROUPS), no JSON needed. A row left
    without a kind, name and parameters is no evaluator (an experiment may have none), and a removed row
    (DELETE) is skipped. The optional JSON box adds parameters on top of the fields."""

    kind = forms.ChoiceField(
        choices=[("", "—")] + [(k.key, k.title) for k in evaluators.KINDS.values()], required=False
    )
    name = forms.CharField(max_length=60, required=False)
    exact_case_sensitive = forms.BooleanField(required=False, label="Case sensitive")
    contains_value = forms.CharField(
        max_length=1000, required=False, label="Text to look for", help_text="e.g. refund, or As an AI."
    )
    contains_expected = forms.BooleanField(required=False, label="Look for the row's expected output instead")
    contains_case_sensitive = forms.BooleanField(required=False, label="Case sensitive")
    regex_pattern = forms.CharField(
        max_length=1000, required=False, label="Pattern", widget=forms.TextInput(attrs={"class": "font-monospace"}),
        help_text=r"A regular expression, e.g. ^\d+$ for a number alone.",
    )  # fmt: skip
    regex_ignore_case = forms.BooleanField(required=False, label="Ignore case")
    schema = forms.CharField(
        required=False, label="JSON schema", widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}),
        help_text='e.g. {"type": "object", "required": ["answer"]}',
    )  # fmt: skip
    length_min = forms.IntegerField(required=False, min_value=0, label="At least")
    length_max = forms.IntegerField(required=False, min_value=0, label="At most")
    length_unit = forms.ChoiceField(choices=[("chars", "characters"), ("words", "words")], required=False,
                                    label="Counted in", initial="chars")  # fmt: skip
    numeric_tolerance = forms.FloatField(required=False, min_value=0, label="Tolerance", initial=0.0)
    numeric_relative = forms.BooleanField(required=False, label="Tolerance is relative (0.05 = 5%)")
    endpoint = forms.ChoiceField(required=False, label="Model endpoint")
    threshold = forms.FloatField(required=False, min_value=0, max_value=1, initial=0.8, label="Passes at",
                                 help_text="Cosine similarity from 0 to 1.")  # fmt: skip
    rubric_preset = forms.ChoiceField(required=False, label="Rubric from the library")
    rubric = forms.CharField(
        required=False, label="Rubric", widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What the judge looks for. Picking from the library fills this in; edit it freely.",
    )  # fmt: skip
    judge_prompt = forms.ChoiceField(
        required=False, label="Judge prompt",
        help_text="A studio prompt (tag: judge), edited and versioned like any prompt; the experiment pins the "
        "version. Left at the default, the prompt llm-judge is created on save.",
    )  # fmt: skip
    scale_min = forms.IntegerField(required=False, initial=1, label="Scale from")
    scale_max = forms.IntegerField(required=False, initial=5, label="to")
    pass_at = forms.IntegerField(required=False, initial=4, label="Passes at")
    params = forms.CharField(
        required=False, label="More parameters (JSON, optional)",
        widget=forms.TextInput(attrs={"class": "font-monospace", "placeholder": "{}"}),
    )  # fmt: skip

    def __init__(
        self, *args, endpoints: dict[str, int] | None = None, judge_prompts: list[tuple[int, str]] = (), **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.endpoint_ids = dict(endpoints or {})
        self.fields["endpoint"].choices = [("", "—")] + [(name, name) for name in self.endpoint_ids]
        self.fields["rubric_preset"].choices = [("", "— write my own —")] + [
            (r.key, r.title) for r in rubrics.RUBRICS.values()
        ]
        self.fields["judge_prompt"].choices = [
            ("", f"Newest version of {rubrics.JUDGE_PROMPT_NAME} (the default judge prompt)")
        ] + list(judge_prompts)

    def groups(self) -> list[dict[str, Any]]:
        """The kind groups with their bound fields, for the row's template."""
        return [
            {"kinds": " ".join(kinds), "fields": [self[name] for name in names], "help": help_text}
            for kinds, names, help_text in EVALUATOR_GROUPS
        ]

    def clean_params(self) -> dict[str, Any]:
        return _json_object(self.cleaned_data["params"], "Evaluator parameters")

    def clean_schema(self) -> dict[str, Any] | None:
        return _json_object(self.cleaned_data["schema"], "JSON schema") or None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        if not kind:
            if data.get("name") or data.get("params"):
                self.add_error("kind", "Choose a kind for this evaluator, or remove the row.")
            return data
        if self.errors or data.get("DELETE"):
            return data
        params = evaluator_params(kind, data, endpoints=self.endpoint_ids)
        params.update(data.get("params") or {})
        for problem in evaluator_problems(kind, params):
            self.add_error(None, problem)
        data["params"] = params
        return data


class _BaseVariantFormSet(forms.BaseFormSet):
    def get_form_kwargs(self, index):
        return dict(self.form_kwargs)


VariantFormSet = forms.formset_factory(VariantForm, formset=_BaseVariantFormSet, extra=0, min_num=1, max_num=12)
EvaluatorFormSet = forms.formset_factory(
    EvaluatorForm, formset=_BaseVariantFormSet, extra=0, max_num=20, can_delete=True
)
