from django.urls import path

from apps.webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.webhook_list, name="list"),
    path("<int:pk>/", views.webhook_detail, name="detail"),
    path("<int:pk>/active/", views.webhook_active, name="active"),
    path("<int:pk>/delete/", views.webhook_delete, name="delete"),
    path("<int:pk>/ping/", views.webhook_ping, name="ping"),
    path("deliveries/<int:pk>/retry/", views.delivery_retry, name="delivery_retry"),
]
