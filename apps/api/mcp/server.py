"""The MCP server of one API key: tools, resources and prompts, each answered by a REST endpoint.

A read key sees the read tools; a read-write key also sees `create_version` and
`start_experiment`. Whatever a client sends, the REST endpoint decides: a read
key that calls a write tool gets the API's 403, and a protected label moves only
through the release gate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from asgiref.sync import sync_to_async
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.shared.exceptions import McpError

from apps.api.mcp.rest import RestCaller, RestError, segment

SERVER_NAME = "prompt-studio"
URI_PREFIX = "prompt-studio://prompts/"
RELEASED_LABEL = "production"

_NAME = {"type": "string", "description": "The prompt's name."}
_LABEL = {"type": "string", "description": "A label such as production (the default), staging or latest."}
_VERSION = {"type": "integer", "minimum": 1, "description": "A version number, instead of a label."}
_REF = {
    "type": ["string", "integer"],
    "description": "A version number or a label (production, latest, ...).",
}
_MESSAGES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"role": {"enum": ["system", "user", "assistant"]}, "content": {"type": "string"}},
        "required": ["role", "content"],
    },
}


@dataclass
class Tool:
    name: str
    description: str
    schema: dict[str, Any]
    run: Callable[[RestCaller, dict[str, Any]], Any]
    writes: bool = False


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _selector(args: dict[str, Any]) -> dict[str, Any]:
    if "version" in args:
        return {"version": args["version"]}
    return {"label": args.get("label", RELEASED_LABEL)}


def _list_prompts(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    prompts = rest.get("prompts")["prompts"]
    query = args.get("query", "").strip().lower()
    if query:
        prompts = [p for p in prompts if query in p["name"].lower() or query in (p["description"] or "").lower()]
    return {"prompts": prompts}


def _get_prompt(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    return rest.get(f"prompts/{segment(args['name'])}", query=_selector(args))


def _render(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    body = {**_selector(args), "variables": args.get("variables", {})}
    return rest.post(f"prompts/{segment(args['name'])}/render", body)


def _diff(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    return rest.get(f"prompts/{segment(args['name'])}/diff", query={"old": args["old"], "new": args["new"]})


def _versions(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    return rest.get(f"prompts/{segment(args['name'])}/versions")


def _create_version(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    name = segment(args["name"])
    body = {key: args[key] for key in ("type", "template", "messages", "config", "variables", "message") if key in args}
    body["create_prompt"] = args.get("create_prompt", False)
    if "parent_version" in args:
        body["parent_version"] = args["parent_version"]
    else:
        try:
            history = rest.get(f"prompts/{name}/versions")["versions"]
        except RestError as exc:
            if exc.code != "prompt_not_found":
                raise
            history = []
        body["parent_version"] = history[0]["version"] if history else None
    saved = rest.post(f"prompts/{name}/versions", body)
    if not args.get("label"):
        return saved
    try:
        moved = rest.post(
            f"prompts/{name}/labels/{segment(args['label'])}",
            {"version": saved["version"], "reason": args.get("message") or "moved through MCP"},
        )
        return {**saved, "label": moved}
    except RestError as exc:
        # The version is saved either way; a protected label stays where it is until its review is approved.
        return {**saved, "label": {"label": args["label"], "moved": False, "code": exc.code, "detail": exc.detail}}


def _datasets(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    return rest.get("datasets")


def _experiments(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    return rest.get("experiments")


def _start_experiment(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    started = rest.post("experiments", {**args, "start": True})
    return rest.get(f"experiments/{started['id']}")


def _experiment(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    return rest.get(f"experiments/{args['id']}")


def _recent_traces(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    query = {
        "prompt": args["name"],
        "version": args.get("version"),
        "label": args.get("label"),
        "status": args.get("status"),
        "since": args.get("since"),
        "q": args.get("search"),
        "per_page": args.get("limit", 20),
    }
    return rest.get("traces", query=query)


def _experiment_summary(rest: RestCaller, args: dict[str, Any]) -> dict[str, Any]:
    return rest.get(f"experiments/{args['id']}/summary")


_ID = _object({"id": {"type": "integer", "minimum": 1, "description": "The experiment's id."}}, ("id",))

TOOLS = [
    Tool(
        "list_prompts",
        "List the project's prompts with their newest version and labels; `query` searches names and descriptions.",
        _object({"query": {"type": "string", "description": "Words to look for (optional)."}}),
        _list_prompts,
    ),
    Tool(
        "get_prompt",
        "Fetch one version of a prompt by label (default production) or version number: its template or "
        "messages, model config, variables with types, and labels.",
        _object({"name": _NAME, "label": _LABEL, "version": _VERSION}, ("name",)),
        _get_prompt,
    ),
    Tool(
        "list_versions",
        "A prompt's versions, newest first, with parents, messages, authors and labels.",
        _object({"name": _NAME}, ("name",)),
        _versions,
    ),
    Tool(
        "render_prompt",
        "Render a prompt with variables in the studio's sandbox; a missing or wrong-typed variable is named.",
        _object(
            {"name": _NAME, "label": _LABEL, "version": _VERSION, "variables": {"type": "object"}},
            ("name", "variables"),
        ),
        _render,
    ),
    Tool(
        "diff_versions",
        "Diff two versions of a prompt (each a version number or a label): a unified diff of the text or "
        "messages, and the config keys and variables that changed.",
        _object({"name": _NAME, "old": _REF, "new": _REF}, ("name", "old", "new")),
        _diff,
    ),
    Tool(
        "create_version",
        "Save a new version of a prompt (read-write keys). `parent_version` defaults to the newest version; a "
        "newer one saved since is refused. `label` then moves a label to it: a protected label (production) "
        "does not move without an approved review, and the answer says so.",
        _object(
            {
                "name": _NAME,
                "type": {"enum": ["text", "chat"]},
                "template": {"type": "string", "description": "The Jinja2 template of a text prompt."},
                "messages": {**_MESSAGES, "description": "The messages of a chat prompt."},
                "config": {"type": "object", "description": "Model config: model, temperature, max_tokens, ..."},
                "variables": {
                    "type": "array",
                    "items": {"type": "object"},
                    "description": "Optional specs: [{name, type, description, sample}].",
                },
                "parent_version": {"type": ["integer", "null"], "minimum": 1},
                "message": {"type": "string", "description": "What changed and why."},
                "create_prompt": {"type": "boolean", "description": "Create the prompt if it is new."},
                "label": {"type": "string", "description": "A label to move to the new version (optional)."},
            },
            ("name", "type"),
        ),
        _create_version,
        writes=True,
    ),
    Tool("list_datasets", "The project's datasets with their newest version and row count.", _object({}), _datasets),
    Tool("list_experiments", "The project's experiments, newest first.", _object({}), _experiments),
    Tool(
        "start_experiment",
        "Create and start an experiment (read-write keys): variants of prompt versions against model "
        "endpoints over a dataset, with evaluators. Answers its status; poll get_experiment.",
        _object(
            {
                "name": {"type": "string"},
                "dataset": {"type": "string", "description": "The dataset's name."},
                "dataset_version": {"type": "integer", "minimum": 1, "description": "Default: the newest."},
                "variants": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "description": "A, B, ..."},
                            "prompt": _NAME,
                            "label": _LABEL,
                            "version": _VERSION,
                            "endpoint": {"type": "string", "description": "The model endpoint's name."},
                            "params": {"type": "object"},
                        },
                        "required": ["name", "prompt", "endpoint"],
                    },
                },
                "evaluators": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "kind": {"type": "string"}, "params": {}},
                        "required": ["name", "kind"],
                    },
                },
                "repeats": {"type": "integer", "minimum": 1},
                "budget": {"type": ["number", "string", "null"], "description": "Most to spend, in dollars."},
            },
            ("name", "dataset", "variants"),
        ),
        _start_experiment,
        writes=True,
    ),
    Tool(
        "get_experiment",
        "An experiment's status, cells done / failed / waiting, totals, and per variant the evaluators' scores, "
        "latency and cost.",
        _ID,
        _experiment,
    ),
    Tool(
        "recent_traces",
        "What a prompt did in production, newest first: each trace's time, status, latency, tokens, cost, model, "
        "the prompt version and label it ran, and its feedback. Filter by version, label, status, age or text.",
        _object(
            {
                "name": _NAME,
                "version": _VERSION,
                "label": {"type": "string", "description": "The label the app fetched, such as production."},
                "status": {"enum": ["ok", "error"]},
                "since": {"type": "string", "description": "An age such as 24h or 7d, or an ISO 8601 time."},
                "search": {"type": "string", "description": "Text to find in the inputs and outputs."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 200, "description": "Default 20."},
            },
            ("name",),
        ),
        _recent_traces,
    ),
    Tool(
        "get_experiment_summary",
        "The human side of an experiment: mean ratings with confidence intervals, pairwise win rates with "
        "p-values, rater agreement and a plain-language verdict.",
        _ID,
        _experiment_summary,
    ),
]
TOOLS_BY_NAME = {tool.name: tool for tool in TOOLS}


def _error(exc: RestError) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps({"status": exc.status, **exc.body}))],
        isError=True,
    )


def _uri(name: str, *, label: str | None = None, version: int | None = None) -> str:
    tail = f"versions/{version}" if version is not None else f"labels/{segment(label or RELEASED_LABEL)}"
    return f"{URI_PREFIX}{segment(name)}/{tail}"


def _parse_uri(uri: str) -> tuple[str, dict[str, Any]]:
    parts = uri.removeprefix(URI_PREFIX).split("/") if uri.startswith(URI_PREFIX) else []
    if len(parts) == 3 and parts[1] == "labels":
        return unquote(parts[0]), {"label": unquote(parts[2])}
    if len(parts) == 3 and parts[1] == "versions" and parts[2].isdigit():
        return unquote(parts[0]), {"version": int(parts[2])}
    raise McpError(
        types.ErrorData(
            code=types.INVALID_PARAMS,
            message=f"Unknown resource {uri}: use {URI_PREFIX}<name>/labels/<label> or .../versions/<n>.",
        )
    )


def _invalid(message: str) -> McpError:
    return McpError(types.ErrorData(code=types.INVALID_PARAMS, message=message))


def _coerce(variables: list[dict[str, Any]], arguments: dict[str, str]) -> dict[str, Any]:
    """MCP prompt arguments are strings; turn each into its variable's declared type."""
    from apps.prompts.sandbox import coerce_sample

    types_by_name = {spec["name"]: spec["type"] for spec in variables}
    values: dict[str, Any] = {}
    for name, text in arguments.items():
        try:
            values[name] = coerce_sample(types_by_name.get(name, "string"), text)
        except ValueError as exc:
            raise _invalid(f"Argument '{name}': {exc}") from None
    return values


def build_server(rest: RestCaller, *, can_write: bool, before_call: Callable[[], None] | None = None) -> Server:
    """An MCP server answering for one key; `before_call` runs before each REST call (e.g. to recycle a
    long-running process's stale database connections)."""
    server: Server = Server(SERVER_NAME, version="1", instructions=__doc__)

    def blocking(function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            if before_call is not None:
                before_call()
            return function(*args)

        return sync_to_async(run, thread_sensitive=True)

    visible = [tool for tool in TOOLS if can_write or not tool.writes]

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return [types.Tool(name=t.name, description=t.description, inputSchema=t.schema) for t in visible]

    @server.call_tool()
    async def call_tool(name: str, arguments: dict[str, Any]) -> Any:
        tool = TOOLS_BY_NAME.get(name)
        if tool is None:
            raise ValueError(f"Unknown tool '{name}'.")
        try:
            return await blocking(tool.run)(rest, arguments)
        except RestError as exc:
            return _error(exc)

    @server.list_resources()
    async def list_resources() -> list[types.Resource]:
        prompts = (await blocking(rest.get)("prompts"))["prompts"]
        resources = []
        for prompt in prompts:
            for label, number in sorted(prompt["labels"].items()):
                resources.append(
                    types.Resource(
                        uri=_uri(prompt["name"], label=label),
                        name=f"{prompt['name']}@{label}",
                        description=f"{prompt['name']} v{number} under the label {label}",
                        mimeType="application/json",
                    )
                )
            if prompt["latest_version"] is not None:
                resources.append(
                    types.Resource(
                        uri=_uri(prompt["name"], label="latest"),
                        name=f"{prompt['name']}@latest",
                        description=f"{prompt['name']} v{prompt['latest_version']}, the newest version",
                        mimeType="application/json",
                    )
                )
        return resources

    @server.list_resource_templates()
    async def list_resource_templates() -> list[types.ResourceTemplate]:
        return [
            types.ResourceTemplate(
                uriTemplate=URI_PREFIX + "{name}/labels/{label}",
                name="prompt by label",
                description="A prompt's version under a label: template or messages, config, variables.",
                mimeType="application/json",
            ),
            types.ResourceTemplate(
                uriTemplate=URI_PREFIX + "{name}/versions/{version}",
                name="prompt by version",
                description="One version of a prompt.",
                mimeType="application/json",
            ),
        ]

    @server.read_resource()
    async def read_resource(uri: Any) -> list[ReadResourceContents]:
        name, selector = _parse_uri(str(uri))
        try:
            document = await blocking(rest.get)(f"prompts/{segment(name)}", selector)
        except RestError as exc:
            raise _invalid(exc.detail) from None
        return [ReadResourceContents(content=json.dumps(document, indent=2), mime_type="application/json")]

    @server.list_prompts()
    async def list_prompts() -> list[types.Prompt]:
        try:
            released = await blocking(rest.get)("releases", {"label": RELEASED_LABEL})
        except RestError as exc:
            if exc.code == "label_not_found":
                return []
            raise
        return [
            types.Prompt(
                name=name,
                title=f"{name} (v{document['version']}, {RELEASED_LABEL})",
                description=f"{name} v{document['version']} as released under {RELEASED_LABEL}, rendered by the "
                "studio." + (" A system message is sent with the user role." if document["type"] == "chat" else ""),
                arguments=[
                    types.PromptArgument(
                        name=variable["name"],
                        description=f"{variable['type']}. {variable['description']}".strip(". ").strip()
                        or variable["type"],
                        required=True,
                    )
                    for variable in document["variables"]
                ],
            )
            for name, document in released["prompts"].items()
        ]

    @server.get_prompt()
    async def get_prompt(name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
        def render() -> dict[str, Any]:
            document = rest.get(f"prompts/{segment(name)}", {"label": RELEASED_LABEL})
            variables = _coerce(document["variables"], arguments or {})
            body = {"version": document["version"], "variables": variables}
            return rest.post(f"prompts/{segment(name)}/render", body)

        try:
            rendered = await blocking(render)()
        except RestError as exc:
            raise _invalid(exc.detail) from None
        if rendered["type"] == "text":
            messages = [types.PromptMessage(role="user", content=types.TextContent(type="text", text=rendered["text"]))]
        else:
            messages = [
                types.PromptMessage(
                    role="assistant" if message["role"] == "assistant" else "user",
                    content=types.TextContent(type="text", text=message["content"]),
                )
                for message in rendered["messages"]
            ]
        return types.GetPromptResult(description=f"{name} v{rendered['version']} ({RELEASED_LABEL})", messages=messages)

    return server
