from __future__ import annotations

from django import forms

from apps.accounts.models import Role
from apps.core.forms import StyledForm
from apps.reviews.services import MAX_REQUIRED_APPROVALS


def _checkboxes(form: forms.Form, *names: str) -> None:
    for name in names:
        form.fields[name].widget.attrs["class"] = "form-check-input"


class ReleaseRequestForm(StyledForm):
    label = forms.CharField(
        max_length=50,
        initial="production",
        widget=forms.TextInput(attrs={"list": "label-names", "pattern": "[a-z0-9][a-z0-9._\\-]*"}),
        help_text="The label to move to this version once it is approved.",
    )
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="What changed and why; what reviewers should look at.",
    )
    reviewers = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave empty to ask every eligible reviewer.",
    )

    def __init__(self, *args, reviewer_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reviewers"].choices = [(str(u.pk), u.get_username()) for u in reviewer_choices]
        _checkboxes(self, "reviewers")

    def clean_reviewers(self) -> list[int]:
        return [int(pk) for pk in self.cleaned_data["reviewers"]]


class DecisionForm(StyledForm):
    decision = forms.ChoiceField(
        choices=[("comment", "Comment"), ("approve", "Approve"), ("request_changes", "Request changes")]
    )
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Comment", max_length=5000)


class UpdateForm(StyledForm):
    version = forms.IntegerField(min_value=1)
    note = forms.CharField(max_length=500, required=False)


class PolicyForm(StyledForm):
    label_name = forms.CharField(
        max_length=50, label="Label", initial="production", widget=forms.TextInput(attrs={"list": "policy-labels"})
    )
    protected = forms.BooleanField(required=False, initial=True, help_text="Moves only through an approved review.")
    required_approvals = forms.IntegerField(min_value=1, max_value=MAX_REQUIRED_APPROVALS, initial=1)
    approver_roles = forms.MultipleChoiceField(
        choices=[(r, r) for r in (Role.EDITOR, Role.REVIEWER, Role.ADMIN)],
        initial=[Role.REVIEWER, Role.ADMIN],
        widget=forms.CheckboxSelectMultiple,
        label="Who may approve",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _checkboxes(self, "approver_roles", "protected")
