"""Tells drf-spectacular how API keys are sent, so the schema and the docs page offer a Bearer field."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key from the project's API keys page."}


# Python's str.strip() removes these (DRF trims request strings with it); NUL is refused everywhere.
_SPACE = "\\t\\n\\u000b\\u000c\\r\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = f"^[^\\u0000]*[^\\u0000{_SPACE}][^\\u0000]*$"


def _strings(schema):
    if isinstance(schema, dict):
        if schema.get("type") == "string" and not {"enum", "pattern", "format"} & schema.keys():
            yield schema
        for value in schema.values():
            yield from _strings(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _strings(value)


def describe_text_rules(result, generator, request, public):
    """Postprocessing hook: say in the schema what every text field refuses (NUL; blank where one is required)."""
    for component in result.get("components", {}).get("schemas", {}).values():
        for string in _strings(component):
            string["pattern"] = NOT_BLANK if string.get("minLength", 0) >= 1 else NO_NUL
    return result


# Operations that read their body themselves (several content types, or an envelope checked item by item): the
# body is required, which drf-spectacular cannot say for a request given as a raw schema.
BODY_REQUIRED = {
    "otlp_traces_export",
    "traces_ingest",
    "feedback_create",
    "dataset_version_counterfactual",
    "dataset_version_perturb",
}


def require_bodies(result, generator, request, public):
    """Postprocessing hook: mark the request body of BODY_REQUIRED operations as required."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and operation.get("operationId") in BODY_REQUIRED:
                operation.setdefault("requestBody", {})["required"] = True
    return result
