"""The studio's URLs plus /bench/bare (a bare Django JSON view) and /bench/authed (the same behind the API's auth)."""

from django.http import JsonResponse
from django.urls import path

from apps.api.lean import LeanGetView
from studio.urls import urlpatterns as studio_urlpatterns

# About the size and shape of a prompt document, so both sides serialize similar JSON.
DOCUMENT = {
    "name": "support-reply",
    "version": 3,
    "type": "chat",
    "template": None,
    "messages": [
        {"role": "system", "content": "You are a concise, friendly support agent for {{ product }}. " * 3},
        {"role": "user", "content": "Customer {{ customer_name }} writes:\n{{ ticket }}"},
    ],
    "config": {"temperature": 0.3, "max_tokens": 200},
    "variables": [{"name": n, "type": "string", "description": ""} for n in ("product", "customer_name", "ticket")],
    "labels": ["production"],
    "content_hash": "0" * 64,
    "created_at": "2026-01-01T00:00:00+00:00",
}


def bare(request):
    return JsonResponse(DOCUMENT)


class Authed(LeanGetView):
    """The bare view behind the key check and throttle of the prompt endpoint: the difference is their cost."""

    def answer(self, request, key):
        return JsonResponse(DOCUMENT)


urlpatterns = [path("bench/bare", bare), path("bench/authed", Authed.as_view()), *studio_urlpatterns]
