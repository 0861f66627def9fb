from django.urls import path

from apps.ratings import views

app_name = "ratings"

urlpatterns = [
    path("", views.my_queues, name="my_queues"),
    path("experiments/<int:experiment_id>/compare/", views.compare, name="compare"),
    path("experiments/<int:experiment_id>/cells/<int:cell_id>/rate/", views.rate_cell, name="rate_cell"),
    path("experiments/<int:experiment_id>/form/", views.rating_form_edit, name="form"),
    path("experiments/<int:experiment_id>/stats/", views.stats_page, name="stats"),
    path("experiments/<int:experiment_id>/summary.json", views.summary_json, name="summary_json"),
    path("experiments/<int:experiment_id>/queues/new/", views.queue_create, name="queue_create"),
    path("experiments/<int:experiment_id>/export/<str:kind>", views.export, name="export"),
    path("queues/<int:queue_id>/", views.queue_work, name="work"),
    path("queues/<int:queue_id>/claim/", views.queue_claim, name="claim"),
    path("queues/<int:queue_id>/submit/", views.queue_submit, name="submit"),
    path("reviews/<int:review_id>/link/", views.review_link, name="link"),
    path("policies/<str:label_name>/thresholds/", views.policy_thresholds, name="thresholds"),
]
