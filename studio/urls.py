from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.accounts import views as account_views
from apps.api.mcp import http as mcp_http
from apps.core import views as core_views

urlpatterns = [
    path("api/", include("apps.api.urls")),  # first: apps call it many times a second
    path("mcp/", mcp_http.endpoint, name="mcp"),  # MCP streamable HTTP (apps/api/mcp/http.py)
    path("mcp", mcp_http.endpoint),
    path("", account_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("apps.accounts.urls")),
    path("p/<slug:project_slug>/prompts/", include("apps.prompts.urls")),
    path("p/<slug:project_slug>/audit/", include("apps.accounts.audit_urls")),
    path("p/<slug:project_slug>/reviews/", include("apps.reviews.urls")),
    path("p/<slug:project_slug>/reviews/webhooks/", include("apps.webhooks.urls")),
    path("p/<slug:project_slug>/", include("apps.providers.urls")),
    path("p/<slug:project_slug>/playground/", include("apps.playground.urls")),
    path("p/<slug:project_slug>/datasets/", include("apps.datasets.urls")),
    path("p/<slug:project_slug>/experiments/", include("apps.experiments.urls")),
    path("p/<slug:project_slug>/ratings/", include("apps.ratings.urls")),
    path("p/<slug:project_slug>/traces/", include("apps.traces.urls")),
    path("p/<slug:project_slug>/monitoring/", include("apps.monitoring.urls")),
    path("p/<slug:project_slug>/canaries/", include("apps.rollouts.urls")),
]
