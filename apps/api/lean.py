"""The hot path: GETs that apps send many times a second skip DRF's per-request machinery.

A LeanGetView is still a DRF view (so the schema documents its `get`), but its
GETs are answered by `dispatch` directly: the same key check, the same
throttle, the same JSON errors, without building a DRF Request, negotiating a
renderer or instantiating authenticators, permissions and throttles per request.
That is most of the cost of a fetch that the process cache answers.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import JsonResponse
from rest_framework.views import APIView

from apps.api.auth import authenticate_request
from apps.api.cache import KeyInfo
from apps.api.errors import ApiError, describe, not_authenticated, throttled
from apps.api.throttling import seconds_to_wait

logger = logging.getLogger(__name__)


class LeanGetView(APIView):
    def dispatch(self, request, *args, **kwargs):
        if request.method != "GET":
            return super().dispatch(request, *args, **kwargs)
        try:
            key = authenticate_request(request)
            if key is None:
                raise not_authenticated()
            wait = seconds_to_wait(key)
            if wait is not None:
                raise throttled(wait)
            request.auth = key
            return self.answer(request, key, *args, **kwargs)
        except ApiError as exc:
            return _error(exc)
        except Exception as exc:
            if not hasattr(exc, "detail"):
                logger.exception("Unhandled error in the REST API")
                if transaction.get_connection().in_atomic_block:
                    transaction.set_rollback(True)
                return JsonResponse(
                    {"code": "server_error", "detail": "The studio failed to answer; the error is in its log."},
                    status=500,
                )
            return _error(exc)

    def get(self, request, *args, **kwargs):
        """Reached through DRF only for HEAD; GET is answered by dispatch."""
        return self.answer(request, request.auth, *args, **kwargs)

    def answer(self, request, key: KeyInfo, *args, **kwargs):
        raise NotImplementedError


def _error(exc) -> JsonResponse:
    body, headers = describe(exc)
    return JsonResponse(body, status=exc.status_code, headers=headers, json_dumps_params={"ensure_ascii": False})
