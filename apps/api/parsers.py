"""Request body parsers that refuse what the studio cannot take, before or while reading it, with a 4xx."""

from __future__ import annotations

import codecs
from typing import Any

from django.conf import settings
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

from apps.api.errors import ApiError
from apps.core import safejson


def _declared_length(parser_context: dict | None) -> int:
    request = (parser_context or {}).get("request")
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
    except ValueError:
        return 0


def read_bounded(stream, parser_context: dict | None, *, limit: int, setting: str) -> bytes:
    """The body, refused with 413 when it declares more than `limit` bytes (nothing read) or sends more."""
    too_large = ApiError(
        413,
        "body_too_large",
        f"The body is larger than {limit / 1024 / 1024:g} MB, the limit ({setting}). Nothing was read.",
        limit_bytes=limit,
    )
    if _declared_length(parser_context) > limit:
        raise too_large
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise too_large
    return raw


class JSONParser(BaseParser):
    """application/json, at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes; NaN, huge numbers and deep nesting are a 400."""

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        raw = read_bounded(
            stream, parser_context, limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE, setting="DATA_UPLOAD_MAX_MEMORY_SIZE"
        )
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ApiError(400, "invalid_encoding", f"The body is not {encoding} text ({exc}).")
        try:
            return safejson.loads(text)
        except safejson.JsonProblem as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise ApiError(400, "invalid_json", f"JSON parse error - {exc.msg} ({where}).")
        except ValueError as exc:
            raise ApiError(400, "invalid_json", f"JSON parse error - {exc}")
