from django.urls import path

from apps.accounts import views

app_name = "accounts"

urlpatterns = [
    path("projects/new/", views.project_create, name="project_create"),
    path("p/<slug:project_slug>/members/", views.member_list, name="members"),
    path("p/<slug:project_slug>/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("p/<slug:project_slug>/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("p/<slug:project_slug>/api-keys/", views.api_key_list, name="api_keys"),
    path("p/<slug:project_slug>/api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
]
