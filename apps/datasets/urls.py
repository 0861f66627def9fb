from django.urls import path

from apps.datasets import views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("import/", views.import_upload, name="import"),
    path("import/<str:token>/", views.import_map, name="import_map"),
    path("import/<str:token>/status/", views.import_status, name="import_status"),
    path("import/<str:token>/cancel/", views.import_cancel, name="import_cancel"),
    path("<int:dataset_id>/", views.dataset_detail, name="detail"),
    path("<int:dataset_id>/v/<int:number>/", views.version_detail, name="version"),
    path("<int:dataset_id>/v/<int:number>/rows/add/", views.row_add, name="row_add"),
    path("<int:dataset_id>/v/<int:number>/rows/<int:position>/", views.row_edit, name="row"),
    path("<int:dataset_id>/v/<int:number>/rows/<int:position>/delete/", views.row_delete, name="row_delete"),
    path("<int:dataset_id>/v/<int:number>/quality/", views.version_quality, name="quality"),
    path("<int:dataset_id>/v/<int:number>/redact/", views.version_redact, name="redact"),
    path("<int:dataset_id>/v/<int:number>/check/", views.version_check, name="check"),
    path("<int:dataset_id>/v/<int:number>/variants/", views.version_variants, name="variants"),
    path("<int:dataset_id>/v/<int:number>/export/", views.version_export, name="export"),
]
