from django.urls import path

from apps.monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("drift/", views.drift_list, name="drift"),
    path("drift/run/", views.drift_run, name="drift_run"),
    path("drift/<int:pk>/", views.drift_detail, name="drift_detail"),
    path("alerts/", views.alert_list, name="alerts"),
    path("alerts/rules/", views.rule_create, name="rule_create"),
    path("alerts/rules/<int:pk>/evaluate/", views.rule_evaluate, name="rule_evaluate"),
    path("alerts/rules/<int:pk>/delete/", views.rule_delete, name="rule_delete"),
    path("alerts/<int:pk>/", views.alert_detail, name="alert_detail"),
    path("alerts/<int:pk>/acknowledge/", views.alert_change, {"action": "acknowledge"}, name="alert_acknowledge"),
    path("alerts/<int:pk>/resolve/", views.alert_change, {"action": "resolve"}, name="alert_resolve"),
    path("impact/<int:move_id>/", views.release_impact, name="impact"),
    path("online/", views.online_list, name="online"),
    path("online/rules/", views.online_create, name="online_create"),
    path("online/<int:pk>/", views.online_detail, name="online_detail"),
    path("online/<int:pk>/edit/", views.online_edit, name="online_edit"),
    path("online/<int:pk>/pause/", views.online_set_active, {"active": False}, name="online_pause"),
    path("online/<int:pk>/resume/", views.online_set_active, {"active": True}, name="online_resume"),
    path("online/<int:pk>/delete/", views.online_delete, name="online_delete"),
]
