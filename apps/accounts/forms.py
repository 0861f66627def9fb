from django import forms

from apps.accounts.models import ApiKeyScope, Role
from apps.core.forms import StyledForm


class ProjectForm(StyledForm):
    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class MemberAddForm(StyledForm):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)


class MemberRoleForm(StyledForm):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(StyledForm):
    name = forms.CharField(max_length=100, help_text="Where the key is used, e.g. checkout-service or CI.")
    scope = forms.ChoiceField(
        choices=ApiKeyScope.choices,
        initial=ApiKeyScope.READ,
        help_text="Read fetches and renders prompts; read and write also saves versions and moves labels; "
        "read and send traces lets an app also send traces and feedback.",
    )
