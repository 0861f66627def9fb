from django.urls import path

from apps.providers import views

app_name = "providers"

urlpatterns = [
    path("models/", views.endpoint_list, name="endpoints"),
    path("models/new/", views.endpoint_create, name="endpoint_create"),
    path("models/<int:endpoint_id>/", views.endpoint_edit, name="endpoint_edit"),
    path("models/<int:endpoint_id>/delete/", views.endpoint_delete, name="endpoint_delete"),
    path("models/<int:endpoint_id>/test/", views.endpoint_test, name="endpoint_test"),
]
