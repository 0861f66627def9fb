from django.urls import path

from apps.rollouts import views

app_name = "rollouts"

urlpatterns = [
    path("", views.canary_list, name="list"),
    path("new/<str:name>/<int:number>/", views.canary_new, name="new"),
    path("<int:pk>/", views.canary_detail, name="detail"),
    path("<int:pk>/<str:action>/", views.canary_action, name="action"),
]
