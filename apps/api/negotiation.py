"""The API speaks JSON only, so the renderer is chosen without parsing the Accept header on every request."""

from __future__ import annotations

from rest_framework.negotiation import BaseContentNegotiation


class JsonOnly(BaseContentNegotiation):
    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
