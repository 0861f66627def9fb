from __future__ import annotations

from django import forms

from apps.core.forms import StyledForm


class CanaryStartForm(StyledForm):
    prompt = forms.ChoiceField()
    label = forms.CharField(max_length=50, initial="production")
    version = forms.IntegerField(min_value=1, help_text="The canary version (the label's version is the stable arm).")
    steps = forms.CharField(max_length=100, initial="5, 25, 50, 100", help_text="Canary shares in %, ending at 100.")
    min_volume = forms.IntegerField(min_value=1, max_value=10**7, initial=200, help_text="Canary calls per step.")
    min_minutes = forms.FloatField(min_value=0, max_value=10**5, initial=10, help_text="Minutes per step at least.")
    error_rate = forms.FloatField(
        required=False,
        min_value=0,
        initial=0.0,
        help_text="Tolerated error-rate increase (0.01 = 1 point); empty: off.",
    )
    feedback = forms.FloatField(required=False, min_value=0, help_text="Tolerated drop of mean feedback; empty: off.")
    latency_p95 = forms.FloatField(required=False, min_value=0, help_text="Tolerated p95 increase (0.2 = 20%).")
    cost = forms.FloatField(required=False, min_value=0, help_text="Tolerated cost-per-call increase (0.2 = 20%).")
    score_name = forms.CharField(required=False, max_length=100, help_text="An online evaluator's score name.")
    score = forms.FloatField(required=False, min_value=0, help_text="Tolerated drop of that score.")

    def __init__(self, *args, prompts: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["prompt"].choices = prompts

    def clean_steps(self) -> list[int]:
        try:
            percents = [float(part) for part in self.cleaned_data["steps"].replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError("Give shares in %, separated by commas: 5, 25, 50, 100.") from None
        return [round(p * 100) for p in percents]

    def guardrails(self) -> list[dict]:
        data = self.cleaned_data
        chosen = [
            {"metric": metric, "tolerance": data[metric]}
            for metric in ("error_rate", "feedback", "latency_p95", "cost")
            if data.get(metric) is not None
        ]
        if data.get("score_name") and data.get("score") is not None:
            chosen.append({"metric": "score", "name": data["score_name"], "tolerance": data["score"]})
        return chosen
