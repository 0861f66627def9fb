from django.urls import path

from apps.traces import views

app_name = "traces"

# The studio's own pages live under "-/": a trace id (one path segment) can never collide with them.
urlpatterns = [
    path("", views.trace_list, name="list"),
    path("-/to-dataset/", views.to_dataset, name="to_dataset"),
    path("-/settings/", views.trace_settings, name="settings"),
    path("<str:trace_id>/", views.trace_detail, name="detail"),
    path("<str:trace_id>/generations/<int:span_id>/explain/", views.generation_explain, name="explain"),
]
