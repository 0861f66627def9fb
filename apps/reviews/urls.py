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
]
