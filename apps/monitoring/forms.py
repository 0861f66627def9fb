from __future__ import annotations

from django import forms

from apps.core.forms import StyledForm
from apps.monitoring.models import AlertMetric, AlertOperator


class AlertRuleForm(StyledForm):
    name = forms.CharField(max_length=100)
    prompt = forms.ChoiceField(required=False, help_text="Empty: every prompt of the project.")
    metric = forms.ChoiceField(choices=AlertMetric.choices)
    score_name = forms.CharField(
        max_length=100, required=False,
        help_text="Feedback: the score's name (thumbs); online evaluator: <rule>.<evaluator>; online errors: the rule.",
    )  # fmt: skip
    operator = forms.ChoiceField(choices=AlertOperator.choices)
    threshold = forms.FloatField(help_text="An error rate as a fraction: 0.05 is 5%.")
    window_hours = forms.IntegerField(min_value=1, max_value=24 * 30, initial=1)
    min_volume = forms.IntegerField(min_value=0, max_value=10**9, initial=20)
    email = forms.CharField(max_length=500, required=False, help_text="Comma-separated addresses.")

    def __init__(self, *args, prompts: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["prompt"].choices = [("", "Every prompt"), *prompts]

    def clean_email(self):
        from django.core.validators import validate_email

        addresses = [a.strip() for a in self.cleaned_data["email"].split(",") if a.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"{address!r} is not an e-mail address.") from None
        return ", ".join(addresses)


class DriftForm(StyledForm):
    prompt = forms.ChoiceField()
    window_hours = forms.IntegerField(min_value=1, max_value=24 * 30, initial=24)
    reference = forms.ChoiceField(help_text="The window before, or a dataset version the prompt was tested on.")
    embed_endpoint = forms.ChoiceField(
        required=False, label="Embedding drift",
        help_text="Also compare the texts' meaning: embeddings through this endpoint (centroids, permutation test).",
    )  # fmt: skip

    def __init__(
        self, *args, prompts: list[tuple[str, str]] = (), datasets: list[tuple[str, str]] = (),
        endpoints: list[tuple[str, str]] = (), **kwargs,
    ):  # fmt: skip
        super().__init__(*args, **kwargs)
        self.fields["prompt"].choices = list(prompts)
        self.fields["reference"].choices = [("previous", "The window before"), *datasets]
        self.fields["embed_endpoint"].choices = [("", "No embedding drift"), *endpoints]


EVALUATORS_EXAMPLE = """[
  {"name": "judge", "kind": "llm_judge",
   "params": {"endpoint_id": 1, "rubric": "Is the answer polite and correct?", "scale_min": 1, "scale_max": 5,
              "pass_at": 4}},
  {"name": "short", "kind": "length", "params": {"max": 600}}
]"""


class OnlineRuleForm(StyledForm):
    """An online evaluation rule; the evaluators are the experiments' own kinds, written as JSON."""

    name = forms.CharField(max_length=40, help_text="Letters, digits, - and _; its scores are <name>.<evaluator>.")
    prompt = forms.ChoiceField()
    label = forms.CharField(max_length=50, required=False, initial="production",
                            help_text="Only generations served under this label (empty: any).")  # fmt: skip
    version_number = forms.IntegerField(min_value=1, required=False, help_text="Only this version (empty: any).")
    sample_rate = forms.FloatField(min_value=0.0001, max_value=1, initial=0.1, help_text="0.1 evaluates 10%.")
    daily_max_evaluations = forms.IntegerField(
        min_value=0, max_value=10**9, required=False, initial=500, help_text="Per UTC day (empty: no count limit)."
    )
    daily_max_cost = forms.DecimalField(
        min_value=0, max_digits=12, decimal_places=6, required=False,
        help_text="Dollars per UTC day of model calls (empty: no cost limit).",
    )  # fmt: skip
    evaluators = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 7, "class": "font-monospace"}), initial=EVALUATORS_EXAMPLE
    )
    human_score_name = forms.CharField(
        max_length=100, required=False, help_text="People's feedback to calibrate against (empty: thumbs, rating…)."
    )
    human_pass_at = forms.FloatField(initial=0.5, help_text="A human score at or above this passes (1: a thumbs-up).")

    def __init__(self, *args, prompts: list[tuple[str, str]] = (), editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["prompt"].choices = list(prompts)
        if editing:
            self.fields["name"].disabled = True
            self.fields["prompt"].disabled = True

    def clean_evaluators(self):
        import json

        try:
            value = json.loads(self.cleaned_data["evaluators"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not JSON: {exc.msg} at line {exc.lineno}.") from None
        if not isinstance(value, list):
            raise forms.ValidationError('A list of evaluators: [{"name": ..., "kind": ..., "params": {...}}].')
        return value
