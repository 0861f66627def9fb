from django.urls import path

from apps.experiments import views
from apps.experiments.probes import views as probe_views

app_name = "experiments"

urlpatterns = [
    path("", views.experiment_list, name="list"),
    path("new/", views.experiment_create, name="create"),
    path("compare/", views.experiment_compare, name="compare"),
    path("probes/", probe_views.probe_new, name="probe_new"),
    path("probes/requirements/", probe_views.probe_requirement_add, name="probe_requirement_add"),
    path("probes/acceptable-use/", probe_views.acceptable_use_edit, name="acceptable_use"),
    path("<int:experiment_id>/", views.experiment_detail, name="detail"),
    path("<int:experiment_id>/cells/<int:cell_id>/explain/", probe_views.cell_explain, name="cell_explain"),
    path("explanations/<int:explanation_id>/", probe_views.explanation_part, name="explanation"),
    path("<int:experiment_id>/export.csv", views.experiment_export, name="export"),
    path("<int:experiment_id>/compare/", views.experiment_compare_from, name="compare_from"),
    path("<int:experiment_id>/<str:action>/", views.experiment_action, name="action"),
]
