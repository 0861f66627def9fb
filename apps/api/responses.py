"""The error statuses each operation documents in the OpenAPI schema (every error body is {code, detail})."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse

from apps.api.serializers import ErrorSerializer


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


BAD_INPUT = {400: _error("Bad input; `detail` names the problem.")}
AUTH = {
    401: _error("Missing, invalid or revoked key."),
    429: _error("Too many requests for this key; see Retry-After."),
}
NOT_FOUND = {404: _error("Nothing of that name or number in the key's project.")}
WRITE = {
    403: _error("A read-only key, or a protected label needing a review."),
    409: _error("A conflict, such as a newer version saved since."),
}
BODY = {
    413: _error("The body is over its limit (DATA_UPLOAD_MAX_MEMORY_SIZE, or DATASET_MAX_UPLOAD_MB for rows)."),
    415: _error("The body's Content-Type is not the one this operation reads."),
}
READ_ERRORS = {**BAD_INPUT, **AUTH, **NOT_FOUND}
WRITE_ERRORS = {**READ_ERRORS, **WRITE, **BODY}
