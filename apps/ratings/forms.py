from __future__ import annotations

import json

from django import forms

from apps.core.forms import StyledForm
from apps.ratings.models import QueueKind


class QueueForm(StyledForm):
    name = forms.CharField(max_length=120, initial="Blind review")
    kind = forms.ChoiceField(choices=QueueKind.choices, initial=QueueKind.PAIRWISE)
    variants = forms.TypedMultipleChoiceField(coerce=int, widget=forms.CheckboxSelectMultiple)
    raters_per_item = forms.IntegerField(min_value=1, max_value=20, initial=1, label="Raters per item")
    raters = forms.TypedMultipleChoiceField(
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave empty for an open queue: any editor takes items as they go.",
    )

    def __init__(self, *args, variant_choices, rater_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["variants"].choices = variant_choices
        self.fields["raters"].choices = rater_choices
        if not self.is_bound:
            self.initial["variants"] = [pk for pk, _ in variant_choices[:2]]


class RatingDefinitionForm(StyledForm):
    thumbs = forms.BooleanField(required=False, label="Thumbs up / down")
    scale_max = forms.TypedChoiceField(
        coerce=int,
        choices=[(0, "no scale"), (3, "1 to 3"), (5, "1 to 5"), (7, "1 to 7"), (10, "1 to 10")],
        initial=5,
        label="Scale",
    )
    labels = forms.CharField(
        required=False, help_text="Comma-separated categorical labels, e.g. correct, partly, wrong."
    )
    multi_label = forms.BooleanField(required=False, label="Several labels may apply")
    criteria = forms.CharField(required=False, help_text="Comma-separated named criteria, each scored on the scale.")
    comment = forms.BooleanField(required=False, initial=True, label="Ask for a comment")

    @classmethod
    def from_definition(cls, definition: dict) -> RatingDefinitionForm:
        scale = definition.get("scale")
        return cls(
            initial={
                "thumbs": definition.get("thumbs"),
                "scale_max": scale["max"] if scale else 0,
                "labels": ", ".join(definition.get("labels", [])),
                "multi_label": definition.get("multi_label"),
                "criteria": ", ".join(definition.get("criteria", [])),
                "comment": definition.get("comment"),
            }
        )

    def definition(self) -> dict:
        data = self.cleaned_data
        return {
            "thumbs": data["thumbs"],
            "scale": {"min": 1, "max": data["scale_max"]} if data["scale_max"] else None,
            "labels": data["labels"],
            "multi_label": data["multi_label"],
            "criteria": data["criteria"],
            "comment": data["comment"],
        }


class LinkForm(StyledForm):
    experiment = forms.TypedChoiceField(coerce=int)
    candidate = forms.CharField(
        required=False, max_length=20, help_text="Variant running this version (found by itself)."
    )
    baseline = forms.CharField(required=False, max_length=20, help_text="Variant running the current version.")

    def __init__(self, *args, experiment_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["experiment"].choices = experiment_choices


class ThresholdForm(StyledForm):
    required = forms.BooleanField(required=False, label="Release only when every threshold is met")
    min_win_rate = forms.FloatField(required=False, min_value=0, max_value=1, label="Win rate at least (0..1)")
    max_p_value = forms.FloatField(required=False, min_value=0, max_value=1, label="with p below")
    min_mean_rating = forms.FloatField(required=False, min_value=0, max_value=10, label="Mean rating at least")
    min_ratings = forms.IntegerField(required=False, min_value=0, label="from at least N ratings")
    min_pass_rate = forms.FloatField(required=False, min_value=0, max_value=1, label="Pass rate at least (0..1)")
    pass_rate_evaluator = forms.CharField(required=False, max_length=60, label="of the evaluator named")


def pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
