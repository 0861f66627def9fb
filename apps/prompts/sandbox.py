"""The studio's face of the one sandbox, `prompt_studio.sandbox` (clients/python), with the server's settings.

The sandbox itself lives in the Python client package so that the studio and
every app rendering locally run the same code and the same limits; this module
re-exports its names and fills in the limits from settings
(TEMPLATE_RENDER_TIMEOUT_MS, TEMPLATE_RENDER_MAX_CHARS, TEMPLATE_MAX_SOURCE_CHARS,
TEMPLATE_RENDER_WORKERS, TEMPLATE_RENDER_MEMORY_MB, TEMPLATE_RENDER_ISOLATION).
"""

from __future__ import annotations

from typing import Any

from prompt_studio import sandbox as _sandbox
from prompt_studio.sandbox import (  # noqa: F401 - re-exported for the rest of the server
    ENVIRONMENT,
    INCLUDE_REF,
    MAX_COMPOSED_CHARS,
    MAX_INCLUDE_DEPTH,
    MAX_INCLUDES,
    MAX_RANGE,
    VARIABLE_TYPES,
    PromptSandbox,
    TemplateProblem,
    coerce_sample,
    include_key,
    include_refs,
    include_tree,
    is_plain,
    suggest_types,
    type_matches,
    validate_values,
)


def _limits() -> tuple[float, int]:
    from django.conf import settings

    _sandbox.configure(
        isolation=settings.TEMPLATE_RENDER_ISOLATION,
        workers=settings.TEMPLATE_RENDER_WORKERS,
        memory_mb=settings.TEMPLATE_RENDER_MEMORY_MB,
    )
    return settings.TEMPLATE_RENDER_TIMEOUT_MS / 1000, settings.TEMPLATE_RENDER_MAX_CHARS


def parse(source: str, *, where: str = "", includes: dict[str, Any] | None = None) -> list[str]:
    """Parse a template and return its variables in order of first use (see prompt_studio.sandbox.parse)."""
    from django.conf import settings

    return _sandbox.parse(source, where=where, max_source_chars=settings.TEMPLATE_MAX_SOURCE_CHARS, includes=includes)


def render(
    source: str,
    values: dict[str, Any],
    *,
    where: str = "",
    timeout: float | None = None,
    max_chars: int | None = None,
    includes: dict[str, Any] | str | None = None,
) -> str:
    """Render one template within the configured limits; every failure is a TemplateProblem."""
    default_timeout, default_max = _limits()
    return _sandbox.render(
        source,
        values,
        where=where,
        timeout=timeout if timeout is not None else default_timeout,
        max_chars=max_chars if max_chars is not None else default_max,
        includes=includes,
    )


def render_messages(
    messages: list[dict[str, str]], values: dict[str, Any], *, includes: dict[str, Any] | str | None = None
) -> list[dict[str, str]]:
    timeout, max_chars = _limits()
    return _sandbox.render_messages(messages, values, timeout=timeout, max_chars=max_chars, includes=includes)
