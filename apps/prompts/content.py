"""The content of a version: checking, normalizing and hashing it.

Pure functions but for the snippets: a template with `{% include "name@label" %}` has its includes resolved
and pinned by `apps.prompts.includes` (a database read) when the content is built, and `content_of` reads a
saved version's pins.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from apps.prompts import sandbox
from apps.prompts.models import PromptKind

CHAT_ROLES = ("system", "user", "assistant")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")


class ContentProblem(Exception):
    """Content that cannot be saved; `field` names the part of the form it belongs to."""

    def __init__(self, message: str, *, field: str = "", line: int | None = None):
        self.field = field
        self.line = line
        super().__init__(message)


@dataclass
class Content:
    kind: str
    template: str = ""
    messages: list[dict[str, str]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    variables: list[dict[str, Any]] = field(default_factory=list)
    # {ref: "name:number"}: the snippet version each include is pinned to; part of the hash.
    includes: dict[str, str] = field(default_factory=dict)
    # {"name:number": {name, version, template, includes}}: the texts the pins reach (derived from them).
    snippets: dict[str, dict[str, Any]] = field(default_factory=dict)
    _include_key: str | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        document = {
            "kind": self.kind,
            "template": self.template,
            "messages": self.messages,
            "config": self.config,
            "variables": self.variables,
        }
        if self.includes:  # absent when empty, so every version saved before includes keeps its hash
            document["includes"] = self.includes
        return document

    def include_tree(self) -> dict[str, Any]:
        """What the sandbox renders the includes with (the same function the client uses)."""
        return sandbox.include_tree(self.includes, self.snippets) if self.includes else {}

    def include_key(self) -> str:
        """The include tree as the sandbox's key, built once per content (an experiment renders it per row)."""
        if self._include_key is None:
            self._include_key = sandbox.include_key(self.include_tree())
        return self._include_key

    def hash(self) -> str:
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def sources(self) -> list[tuple[str, str]]:
        """(where, template source) for each template in the content."""
        if self.kind == PromptKind.TEXT:
            return [("template", self.template)]
        return [(f"message {i} ({m['role']})", m["content"]) for i, m in enumerate(self.messages, start=1)]


def _number(config: dict, key: str, low: float, high: float, *, integer: bool = False) -> None:
    value = config.get(key)
    if value in (None, ""):
        config.pop(key, None)
        return
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise ContentProblem(f"{key} must be a number", field=key) from None
    if integer and isinstance(value, float) and not value.is_integer():
        raise ContentProblem(f"{key} must be a whole number", field=key)
    if not low <= number <= high:
        raise ContentProblem(f"{key} must be between {low:g} and {high:g}", field=key)
    config[key] = number


def normalize_config(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Check the model config and return it in its canonical form."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ContentProblem("config must be an object", field="config")
    config = dict(raw)
    known = {"model", "temperature", "max_tokens", "top_p", "stop", "response_format", "tools", "extra"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ContentProblem(f"unknown config keys: {', '.join(unknown)}; put them under 'extra'", field="config")
    model = config.get("model")
    if model in (None, ""):
        config.pop("model", None)
    elif not isinstance(model, str) or len(model) > 200:
        raise ContentProblem("model must be a text of at most 200 characters", field="model")
    _number(config, "temperature", 0, 2)
    _number(config, "top_p", 0, 1)
    _number(config, "max_tokens", 1, 1_000_000, integer=True)
    stop = config.get("stop")
    if stop in (None, "", []):
        config.pop("stop", None)
    else:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop) or len(stop) > 8:
            raise ContentProblem("stop must be a list of at most 8 non-empty texts", field="stop")
        config["stop"] = stop
    response_format = config.get("response_format")
    if response_format in (None, "", "text"):
        config.pop("response_format", None)
    elif isinstance(response_format, str):
        if response_format not in RESPONSE_FORMATS:
            raise ContentProblem(
                f"response_format must be one of {', '.join(RESPONSE_FORMATS)}", field="response_format"
            )
        if response_format == "json_schema":
            raise ContentProblem("a json_schema response format needs the schema itself", field="response_format")
    elif isinstance(response_format, dict):
        if response_format.get("type") not in RESPONSE_FORMATS:
            raise ContentProblem(
                "response_format.type must be text, json_object or json_schema", field="response_format"
            )
    else:
        raise ContentProblem("response_format must be a text or an object", field="response_format")
    tools = config.get("tools")
    if tools in (None, "", []):
        config.pop("tools", None)
    else:
        config["tools"] = normalize_tools(tools)
    extra = config.get("extra")
    if extra in (None, "", {}):
        config.pop("extra", None)
    elif not isinstance(extra, dict):
        raise ContentProblem("extra params must be a JSON object", field="extra")
    elif "api_key" in {k.lower() for k in extra} or "base_url" in extra:
        raise ContentProblem("keys and URLs belong to model endpoints, not to a prompt's config", field="extra")
    return config


TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def normalize_tools(raw: Any) -> list[dict[str, Any]]:
    """Tools the model may call, in OpenAI's shape: [{"type": "function", "function": {name, description,
    parameters (a JSON schema object)}}]; a bare {name, parameters} is taken as a function."""
    if not isinstance(raw, list) or len(raw) > 32:
        raise ContentProblem("tools must be a list of at most 32 function declarations", field="tools")
    tools, names = [], set()
    for index, tool in enumerate(raw, start=1):
        function = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(function, dict) or (isinstance(tool, dict) and tool.get("type", "function") != "function"):
            raise ContentProblem(f"tool {index} must be a function declaration", field="tools")
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise ContentProblem(f"tool {index}: name must be 1-64 letters, digits, _ or -", field="tools")
        if name in names:
            raise ContentProblem(f"tool {index}: the name '{name}' is declared twice", field="tools")
        names.add(name)
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
            raise ContentProblem(f"tool '{name}': parameters must be a JSON schema of type object", field="tools")
        declared: dict[str, Any] = {"name": name, "parameters": parameters}
        if function.get("description"):
            declared["description"] = str(function["description"])[:1000]
        tools.append({"type": "function", "function": declared})
    return tools


def normalize_messages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise ContentProblem("a chat prompt needs at least one message", field="messages")
    messages = []
    for index, message in enumerate(raw, start=1):
        if not isinstance(message, dict):
            raise ContentProblem(f"message {index} must be an object with role and content", field="messages")
        role, text = message.get("role"), message.get("content")
        if role not in CHAT_ROLES:
            raise ContentProblem(f"message {index}: role must be one of {', '.join(CHAT_ROLES)}", field="messages")
        if not isinstance(text, str) or not text.strip():
            raise ContentProblem(f"message {index} ({role}) is empty", field="messages")
        messages.append({"role": role, "content": text})
    return messages


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def build_content(
    *,
    kind: str,
    template: str = "",
    messages: Any = None,
    config: dict[str, Any] | None = None,
    variable_specs: list[dict[str, Any]] | None = None,
    project=None,
    prompt=None,
    keep_pins: dict[str, str] | None = None,
) -> Content:
    """Check everything a version holds; variables come from the templates, specs add type and samples.

    A spec for a variable the templates do not use is dropped; a used variable
    without a spec gets a type guessed from how the template uses it.
    Includes are resolved in `project` (or the project of `prompt`, the prompt being saved, which also
    refuses a cycle back to it) and pinned to the versions their labels point at now (`keep_pins` holds
    some as they are); a snippet's variables are the prompt's too.
    """
    if kind not in PromptKind.values:
        raise ContentProblem("kind must be text or chat", field="kind")
    for field_name, value in (("template", template), ("messages", messages), ("config", config),
                              ("variables", variable_specs)):  # fmt: skip
        if _has_nul(value):
            raise ContentProblem(f"the {field_name} contain(s) a NUL character (\\u0000), which cannot be saved",
                                 field=field_name)  # fmt: skip
    content = Content(kind=kind, config=normalize_config(config))
    if kind == PromptKind.TEXT:
        if not template.strip():
            raise ContentProblem("the template is empty", field="template")
        content.template = template
    else:
        content.messages = normalize_messages(messages)
    names: list[str] = []
    guesses: dict[str, str] = {}
    source_field = "template" if kind == PromptKind.TEXT else "messages"
    tree = _resolve_includes(content, project=project or getattr(prompt, "project", None), prompt=prompt,
                             keep_pins=keep_pins, source_field=source_field)  # fmt: skip
    for where, source in content.sources():
        try:
            found = sandbox.parse(source, where=where, includes=tree)
        except sandbox.TemplateProblem as exc:
            raise ContentProblem(str(exc), field=source_field, line=exc.line)
        names.extend(name for name in found if name not in names)
        for name, guess in sandbox.suggest_types(source).items():
            guesses.setdefault(name, guess)
    for entry in content.snippets.values():
        for name, guess in sandbox.suggest_types(entry["template"]).items():
            guesses.setdefault(name, guess)
    specs = {spec.get("name"): spec for spec in (variable_specs or []) if isinstance(spec, dict)}
    inherited = _snippet_specs(content, project=project or getattr(prompt, "project", None))
    for name in names:
        # A snippet's variable the prompt says nothing of comes with the snippet's type, description and sample.
        spec = specs.get(name) or inherited.get(name, {})
        kind_of = spec.get("type") or guesses.get(name, "string")
        if kind_of not in sandbox.VARIABLE_TYPES:
            raise ContentProblem(f"variable '{name}': unknown type '{kind_of}'", field=f"var-{name}")
        entry: dict[str, Any] = {"name": name, "type": kind_of, "description": str(spec.get("description", ""))[:500]}
        if "sample" in spec and spec["sample"] is not None:
            sample = spec["sample"]
            if isinstance(sample, str) and kind_of != "string":
                try:
                    sample = sandbox.coerce_sample(kind_of, sample)
                except ValueError as exc:
                    raise ContentProblem(f"variable '{name}': sample value: {exc}", field=f"var-{name}") from None
            if not sandbox.type_matches(kind_of, sample):
                raise ContentProblem(f"variable '{name}': the sample is not a {kind_of}", field=f"var-{name}")
            entry["sample"] = sample
        content.variables.append(entry)
    return content


def template_check(source: str, *, project=None, prompt=None) -> dict[str, Any]:
    """What saving would say about one template (a text template or one chat message), for the editor's
    marker while typing: the problem and its line, or the variables the template uses.

    It runs the very check a save runs (build_content, includes resolved in the prompt's project), so the
    two cannot disagree.
    """
    if not source.strip():
        return {"problems": [], "variables": []}
    try:
        content = build_content(kind=PromptKind.TEXT, template=source, project=project, prompt=prompt)
    except ContentProblem as exc:
        cause = exc.__cause__ or exc.__context__
        message = getattr(cause, "message", None) or str(exc)
        return {"problems": [{"line": exc.line or 1, "message": message}], "variables": []}
    return {"problems": [], "variables": [spec["name"] for spec in content.variables]}


def editor_filters() -> list[str]:
    """The filters the sandbox allows, offered by the editor's autocomplete."""
    return sorted(sandbox.ENVIRONMENT.filters)


def _resolve_includes(content: Content, *, project, prompt, keep_pins, source_field: str) -> dict[str, Any] | None:
    """Pin the content's includes (filling content.includes and .snippets); the include tree, or None if none."""
    from apps.prompts import includes

    sources = content.sources()
    try:
        refs = [ref for where, source in sources for ref in sandbox.include_refs(source, where=where)]
        if not refs:
            return None
        if project is None:
            raise sandbox.TemplateProblem("a template with includes is resolved in a project; none was given")
        content.includes, content.snippets = includes.resolve(
            project=project, sources=sources, saving=prompt, keep=keep_pins
        )
        return content.include_tree()
    except sandbox.TemplateProblem as exc:
        raise ContentProblem(str(exc), field=source_field, line=exc.line) from None


def _snippet_specs(content: Content, *, project) -> dict[str, dict[str, Any]]:
    if not content.snippets or project is None:
        return {}
    from apps.prompts import includes

    return includes.snippet_variables(project=project, keys=list(content.snippets))


def render_content(content: Content, values: dict[str, Any]) -> str | list[dict[str, str]]:
    """Render text or messages after checking every variable is present and typed right."""
    sandbox.validate_values(content.variables, values)
    tree = content.include_key()
    if content.kind == PromptKind.TEXT:
        return sandbox.render(content.template, values, where="template", includes=tree)
    return sandbox.render_messages(content.messages, values, includes=tree)


def content_of(version) -> Content:
    """A saved version's content, with its pinned includes (one read when it has none)."""
    from apps.prompts import includes

    pins, snippets = includes.pins_of(version) if version.pk else ({}, {})
    return Content(
        kind=version.kind,
        template=version.template,
        messages=version.messages,
        config=version.config,
        variables=version.variables,
        includes=pins,
        snippets=snippets,
    )


def sample_preview(content: Content) -> dict[str, Any]:
    """Template context of a version rendered with its sample values, or the problem that stopped it."""
    samples = {spec["name"]: spec["sample"] for spec in content.variables if "sample" in spec}
    try:
        rendered = render_content(content, samples)
    except sandbox.TemplateProblem as exc:
        return {"preview_error": str(exc), "missing_variable": exc.variable}
    if isinstance(rendered, str):
        return {"rendered_text": rendered}
    return {"rendered_messages": rendered}
