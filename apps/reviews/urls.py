from django.urls import path

from apps.reviews import views

app_name = "reviews"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("request/<str:prompt_name>/<int:number>/", views.request_create, name="request"),
    path("<int:pk>/", views.review_detail, name="detail"),
    path("<int:pk>/decide/", views.review_decide, name="decide"),
    path("<int:pk>/withdraw/", views.review_withdraw, name="withdraw"),
    path("<int:pk>/update/", views.review_update, name="update"),
    path("<int:pk>/release/", views.review_release, name="release"),
    path("policies/", views.policy_list, name="policies"),
    path("policies/save/", views.policy_save, name="policy_save"),
    path("webhooks/", views.webhook_list, name="webhooks"),
    path("webhooks/<int:pk>/", views.webhook_detail, name="webhook"),
    path("webhooks/<int:pk>/active/", views.webhook_active, name="webhook_active"),
    path("webhooks/<int:pk>/delete/", views.webhook_delete, name="webhook_delete"),
    path("webhooks/<int:pk>/ping/", views.webhook_ping, name="webhook_ping"),
    path("deliveries/<int:pk>/retry/", views.delivery_retry, name="delivery_retry"),
]
