from django.urls import path

from apps.playground import views

app_name = "playground"

urlpatterns = [
    path("", views.playground, name="playground"),
    path("runs/<int:run_id>/", views.playground_run, name="run"),
    path("runs/<int:run_id>/results/<int:result_id>/continue/", views.result_continue, name="result_continue"),
    path(
        "runs/<int:run_id>/results/<int:result_id>/add-to-dataset/", views.result_to_dataset, name="result_to_dataset"
    ),
]
