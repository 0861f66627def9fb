"""For apps already on OpenTelemetry: name the prompt on the span so the studio links it to its version.

    from prompt_studio.otel import set_prompt_attributes

    with tracer.start_as_current_span("chat") as span:
        set_prompt_attributes(prompt, variables={"question": q})      # the current span, or span=...
        ...

Point the OTLP/HTTP exporter at the studio (README: Traces):
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://studio:8000/api/v1/otel/v1/traces and
OTEL_EXPORTER_OTLP_TRACES_HEADERS="Authorization=Bearer ps_...".
The opentelemetry-api package is imported only when no span is given.
"""

from __future__ import annotations

import json
from typing import Any

NAME, VERSION, LABEL, VARIABLES = (
    "prompt_studio.prompt.name",
    "prompt_studio.prompt.version",
    "prompt_studio.prompt.label",
    "prompt_studio.prompt.variables",
)


def prompt_attributes(prompt: Any, *, label: str | None = None, variables: dict | None = None) -> dict[str, Any]:
    """The span attributes naming `prompt` (a client Prompt, or anything with name and version)."""
    attributes: dict[str, Any] = {NAME: prompt.name}
    if getattr(prompt, "version", None):
        attributes[VERSION] = int(prompt.version)
    label = label or getattr(prompt, "label", "")
    if label:
        attributes[LABEL] = label
    if variables:
        attributes[VARIABLES] = json.dumps(variables, default=str)
    return attributes


def set_prompt_attributes(prompt: Any, *, span: Any = None, label: str | None = None, variables: dict | None = None):
    """Set the prompt attributes on `span` (default: the current OpenTelemetry span); returns the span."""
    if span is None:
        from opentelemetry import trace

        span = trace.get_current_span()
    span.set_attributes(prompt_attributes(prompt, label=label, variables=variables))
    return span
