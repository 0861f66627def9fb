from django.urls import path

from apps.prompts import views

app_name = "prompts"

urlpatterns = [
    path("", views.prompt_list, name="list"),
    path("new/", views.prompt_create, name="create"),
    path("<str:name>/", views.prompt_detail, name="detail"),
    path("<str:name>/meta/", views.prompt_meta, name="meta"),
    path("<str:name>/edit/", views.prompt_edit, name="edit"),
    path("<str:name>/check/", views.template_check, name="check"),
    path("<str:name>/compare/", views.version_compare, name="compare"),
    path("<str:name>/v/<int:number>/", views.version_detail, name="version"),
    path("<str:name>/v/<int:number>/extract/", views.snippet_extract, name="extract"),
    path("<str:name>/labels/move/", views.label_move, name="label_move"),
    path("<str:name>/labels/delete/", views.label_delete, name="label_delete"),
    path("<str:name>/dependents/repin/", views.dependents_repin, name="repin"),
]
