from csp.decorators import csp_update
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.negotiation import DefaultContentNegotiation

from apps.api import canaries, datasets, experiments, monitoring, traces, views
from apps.api.errors import not_found

app_name = "api"

# The schema and its docs page are public, and offer YAML, JSON (?format=json) and HTML.
PUBLIC = {
    "authentication_classes": [],
    "permission_classes": [],
    "throttle_classes": [],
    "content_negotiation_class": DefaultContentNegotiation,
}

urlpatterns = [
    path("v1/", views.index, name="index"),
    path("v1/prompts", views.prompt_list, name="prompt_list"),
    path("v1/prompts/<str:name>", views.PromptView.as_view(), name="prompt"),
    path("v1/prompts/<str:name>/render", views.prompt_render, name="render"),
    path("v1/prompts/<str:name>/versions", views.versions, name="versions"),
    path("v1/prompts/<str:name>/diff", views.versions_diff, name="versions_diff"),
    path("v1/prompts/<str:name>/labels/<str:label>", views.label_move, name="label_move"),
    path("v1/releases", views.ReleasesView.as_view(), name="releases"),
    path("v1/datasets", datasets.dataset_list, name="datasets"),
    path("v1/datasets/<str:name>/versions", datasets.dataset_versions, name="dataset_versions"),
    path("v1/datasets/<str:name>/versions/<int:number>/items", datasets.dataset_version_items, name="dataset_items"),
    path(
        "v1/datasets/<str:name>/versions/<int:number>/counterfactual",
        datasets.dataset_version_counterfactual,
        name="dataset_counterfactual",
    ),
    path(
        "v1/datasets/<str:name>/versions/<int:number>/perturb", datasets.dataset_version_perturb, name="dataset_perturb"
    ),
    path("v1/experiments", experiments.experiment_list, name="experiments"),
    path("v1/experiments/<int:experiment_id>", experiments.experiment_detail, name="experiment"),
    path("v1/experiments/<int:experiment_id>/cells", experiments.experiment_cells, name="experiment_cells"),
    path("v1/experiments/<int:experiment_id>/summary", experiments.experiment_summary, name="experiment_summary"),
    path("v1/experiments/<int:experiment_id>/compare", experiments.experiment_compare, name="experiment_compare"),
    path("v1/experiments/<int:experiment_id>/<str:action>", experiments.experiment_action, name="experiment_action"),
    path("v1/otel/v1/traces", traces.otlp_traces, name="otlp_traces"),
    path("v1/traces", traces.traces, name="traces"),
    path("v1/traces/<str:trace_id>", traces.trace_detail, name="trace"),
    path("v1/feedback", traces.feedback, name="feedback"),
    path("v1/metrics", monitoring.metrics, name="metrics"),
    path("v1/canaries", canaries.canaries, name="canaries"),
    path("v1/canaries/<int:canary_id>/<str:action>", canaries.canary_action, name="canary_action"),
    path("v1/drift", monitoring.drift_reports, name="drift_reports"),
    path("v1/drift/<int:report_id>", monitoring.drift_report, name="drift_report"),
    path("v1/alerts", monitoring.alerts, name="alerts"),
    path("v1/online-rules", monitoring.online_rules, name="online_rules"),
    path("v1/online-rules/<int:rule_id>", monitoring.online_rule, name="online_rule"),
    path(
        "v1/schema",
        SpectacularAPIView.as_view(**PUBLIC),
        name="schema",
    ),
    path(
        "v1/docs",
        # The split view serves Swagger UI's script as a file; its page keeps one inline <style>.
        csp_update({"style-src-elem": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api:schema", **PUBLIC)
        ),
        name="docs",
    ),
    re_path(r"^.*$", not_found),
]
