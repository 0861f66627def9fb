from django.urls import path

from apps.experiments import views

app_name = "experiments"

urlpatterns = [
    path("", views.experiment_list, name="list"),
    path("new/", views.experiment_create, name="create"),
    path("<int:experiment_id>/", views.experiment_detail, name="detail"),
    path("<int:experiment_id>/export.csv", views.experiment_export, name="export"),
    path("<int:experiment_id>/<str:action>/", views.experiment_action, name="action"),
]
