"""Every error of the REST API is JSON: a stable machine `code` and a human `detail`."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error with its HTTP status, code and detail; `extra` adds fields such as the variable's name."""

    def __init__(self, status_code: int, code: str, detail: str, **extra: Any):
        self.status_code = status_code
        self.extra = extra
        super().__init__(detail=detail, code=code)


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            return message if field == "non_field_errors" else f"{field}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def _code(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid_request"
    if isinstance(exc, exceptions.ParseError):
        return "invalid_json"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def exception_handler(exc: Exception, context: dict) -> Response:
    from rest_framework.views import set_rollback  # rest_framework.views imports the auth classes that import us

    if isinstance(exc, exceptions.NotAuthenticated):
        exc = not_authenticated()
    if isinstance(exc, Http404):
        exc = ApiError(404, "not_found", str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = ApiError(403, "permission_denied", str(exc) or "Not allowed.")
    elif isinstance(exc, DataError) or (isinstance(exc, ValueError) and "NUL" in str(exc)):
        # The database refused a value (a NUL character, a number out of range): the input's fault, not ours.
        logger.warning("A value the database cannot store: %s", exc)
        exc = ApiError(400, "unstorable_value", "A value cannot be stored (for example a NUL character).")
    if not isinstance(exc, exceptions.APIException):
        logger.exception("Unhandled error in the REST API", exc_info=exc)
        set_rollback()
        return Response(
            {"code": "server_error", "detail": "The studio failed to answer; the error is in its log."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    body, headers = describe(exc)
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def describe(exc: exceptions.APIException) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON body and headers of an error response."""
    # A detail may quote the request (an unknown key): a NUL in it would be a response the schema forbids.
    body: dict[str, Any] = {"code": _code(exc), "detail": _first_message(exc.detail).replace("\x00", "\\x00")}
    if isinstance(exc, exceptions.ValidationError):
        body["errors"] = exc.detail
    body.update(getattr(exc, "extra", {}))
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait) + 1)
    return body, headers


def not_authenticated() -> ApiError:
    from apps.api.auth import AUTH_HEADER, NOT_AUTHENTICATED

    exc = ApiError(401, "not_authenticated", NOT_AUTHENTICATED)
    exc.auth_header = AUTH_HEADER
    return exc


def throttled(wait: float) -> exceptions.Throttled:
    return exceptions.Throttled(wait=wait)


@csrf_exempt  # the API has no sessions: a POST to an unknown path is a 404, not the HTML CSRF page
def not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown paths under /api/ answer JSON too, not the HTML 404 page, whatever the method."""
    return JsonResponse({"code": "not_found", "detail": f"No API endpoint at {request.path}."}, status=404)
