from __future__ import annotations

from django import forms

from apps.core.forms import StyledForm
from apps.monitoring.models import AlertMetric, AlertOperator


class AlertRuleForm(StyledForm):
    name = forms.CharField(max_length=100)
    prompt = forms.ChoiceField(required=False, help_text="Empty: every prompt of the project.")
    metric = forms.ChoiceField(choices=AlertMetric.choices)
    score_name = forms.CharField(max_length=100, required=False, help_text="For a feedback rule: the score's name.")
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

    def __init__(self, *args, prompts: list[tuple[str, str]] = (), datasets: list[tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["prompt"].choices = list(prompts)
        self.fields["reference"].choices = [("previous", "The window before"), *datasets]
