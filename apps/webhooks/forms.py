from __future__ import annotations

from django import forms

from apps.core.forms import StyledForm
from apps.webhooks.models import WebhookEvent


class WebhookForm(StyledForm):
    url = forms.CharField(max_length=500, label="URL", widget=forms.URLInput(attrs={"placeholder": "https://"}))
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=[(e.value, e.label) for e in WebhookEvent if e != WebhookEvent.PING],
        widget=forms.CheckboxSelectMultiple,
        initial=[e.value for e in WebhookEvent if e != WebhookEvent.PING],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["events"].widget.attrs["class"] = "form-check-input"
