from __future__ import annotations

from django import forms
from django.contrib import admin

from apps.providers import services
from apps.providers.models import ModelEndpoint


class EndpointAdminForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown again. Leave empty to keep the current key.",
    )

    class Meta:
        model = ModelEndpoint
        fields = ["project", *services.ENDPOINT_FIELDS]


@admin.register(ModelEndpoint)
class ModelEndpointAdmin(admin.ModelAdmin):
    form = EndpointAdminForm
    list_display = ["name", "project", "kind", "model", "api_base", "masked_key", "is_active"]
    list_filter = ["kind", "is_active", "project"]
    search_fields = ["name", "model"]
    readonly_fields = ["masked_key", "created_by", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        # Through the services, so the key is encrypted and the change audited like in the studio.
        data = {k: form.cleaned_data[k] for k in services.ENDPOINT_FIELDS if k in form.cleaned_data}
        api_key = form.cleaned_data.get("api_key") or ""
        if change:
            saved = services.endpoint_update(endpoint=obj, actor=request.user, api_key=api_key or None, **data)
        else:
            saved = services.endpoint_create(
                project=form.cleaned_data["project"], actor=request.user, api_key=api_key, **data
            )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.endpoint_delete(endpoint=obj, actor=request.user)
