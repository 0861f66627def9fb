"""The Jinja2 sandbox for prompt templates: parse, find variables, validate values, render.

Templates come from users, so they run in an immutable sandbox with
StrictUndefined, no loader (no include, import or extends), and budgets: a
time limit checked at every attribute access, item access, call, loop step
over `range` and output chunk; a cap on the output; and size checks on the
operations that can blow up memory before any output exists (`*`, `**`, `%`,
`str.format`, padding, `replace`).
"""

from __future__ import annotations

import contextvars
import functools
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

VARIABLE_TYPES = ("string", "number", "boolean", "list", "object")
MAX_RANGE = 10_000
MAX_POWER_EXPONENT = 1_000
_LARGE_PERCENT_WIDTH = re.compile(r"%[-+ #0]*(\*|\d{5,})")
_LARGE_BRACE_WIDTH = re.compile(r"\{[^{}]*:[^{}]*(\d{5,}|\{)")
_PADDING_METHODS = {"center", "ljust", "rjust", "zfill"}


class TemplateProblem(Exception):
    """A template that cannot be saved or rendered; the message is shown to the user as is."""

    def __init__(self, message: str, *, line: int | None = None, variable: str | None = None, where: str = ""):
        self.message = message
        self.line = line
        self.variable = variable
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}line {line}: {message}" if line else f"{prefix}{message}")


@dataclass
class _Budget:
    deadline: float
    max_chars: int
    range_steps: int = 0


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _tick() -> None:
    budget = _budget.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise TemplateProblem("rendering took longer than the time limit; simplify loops in the template")


def _check_size(length: int) -> None:
    budget = _budget.get()
    if budget is not None and length > budget.max_chars:
        raise TemplateProblem(f"the output would exceed the limit of {budget.max_chars:,} characters")


def _check_format_string(template: str) -> None:
    if _LARGE_PERCENT_WIDTH.search(template) or _LARGE_BRACE_WIDTH.search(template):
        raise TemplateProblem("format widths above 9999 (or taken from arguments) are not allowed")


def _ticking_iter(items: Iterable[Any]) -> Iterable[Any]:
    budget = _budget.get()
    for index, item in enumerate(items):
        if budget is not None and index % 256 == 255:  # cheap check; _tick reads the clock
            _tick()
        yield item


class _TickingList(list):
    """A list from the caller's values whose loops check the time budget (nested loops over big lists)."""

    def __iter__(self):
        return iter(_ticking_iter(super().__iter__()))


class _TickingStr(str):
    def __iter__(self):
        return iter(_ticking_iter(super().__iter__()))


def _watch(value: Any) -> Any:
    """Wrap the caller's lists and strings, at any depth, so iterating them is budgeted."""
    if isinstance(value, str):
        return _TickingStr(value) if len(value) > 256 else value
    if isinstance(value, list | tuple):
        return _TickingList(_watch(item) for item in value)
    if isinstance(value, dict):
        return {key: _watch(item) for key, item in value.items()}
    return value


def _bounded_range(*args: int) -> Iterable[int]:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateProblem(f"range() is limited to {MAX_RANGE:,} items")
    budget = _budget.get()
    for number in numbers:
        if budget is not None:
            budget.range_steps += 1
            if budget.range_steps % 256 == 0:
                _tick()
        yield number


def _filter_replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    value, old, new = str(value), str(old), str(new)
    occurrences = value.count(old) if old else len(value) + 1
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    _check_size(len(value) + occurrences * max(0, len(new) - len(old)))
    return value.replace(old, new) if count is None else value.replace(old, new, count)


def _filter_center(value: Any, width: int = 80) -> str:
    _check_size(int(width))
    return str(value).center(int(width))


def _filter_indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(value)
    prefix = " " * int(width) if not isinstance(width, str) else width
    _check_size(len(text) + len(prefix) * (text.count("\n") + 1))
    from jinja2.filters import do_indent

    return do_indent(text, width, first, blank)


def _filter_format(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_format_string(str(value))
    from jinja2.filters import do_format

    result = do_format(str(value), *args, **kwargs)
    _check_size(len(result))
    return result


class PromptSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                    _check_size(len(sequence) * times)
        elif operator == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_POWER_EXPONENT:
                raise TemplateProblem(f"exponents are limited to {MAX_POWER_EXPONENT}")
        elif operator == "%" and isinstance(left, str):
            _check_format_string(left)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)

    def call(__self, __context, __obj, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        _tick()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name in ("format", "format_map"):
                _check_format_string(owner)
            elif name in _PADDING_METHODS and args:
                _check_size(int(args[0]))
            elif name == "replace" and len(args) >= 2:
                _filter_replace(owner, *args[:3])
            elif name == "expandtabs":
                _check_size(len(owner) * int(args[0] if args else 8))
        return super().call(__context, __obj, *args, **kwargs)


def _make_environment() -> PromptSandbox:
    environment = PromptSandbox(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=400,
    )
    environment.globals = {"range": _bounded_range, "dict": dict, "namespace": Namespace}
    environment.filters["replace"] = _filter_replace
    environment.filters["center"] = _filter_center
    environment.filters["indent"] = _filter_indent
    environment.filters["format"] = _filter_format
    return environment


ENVIRONMENT = _make_environment()

_FORBIDDEN_NODES = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.Extends: "extends",
}


def _max_source_chars() -> int:
    from django.conf import settings

    return settings.TEMPLATE_MAX_SOURCE_CHARS


def parse(source: str, *, where: str = "") -> list[str]:
    """Parse a template and return its variables in order of first use.

    Raises TemplateProblem with the line number for a syntax error, an
    unsupported tag, or a template longer than the configured maximum.
    """
    if len(source) > _max_source_chars():
        raise TemplateProblem(f"the template is longer than {_max_source_chars():,} characters", where=where)
    try:
        tree = ENVIRONMENT.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or "syntax error", line=exc.lineno, where=where) from None
    for node_type, tag in _FORBIDDEN_NODES.items():
        for node in tree.find_all(node_type):
            raise TemplateProblem(
                f"the '{tag}' tag is not supported in prompt templates", line=node.lineno, where=where
            )
    undeclared = meta.find_undeclared_variables(tree) - set(ENVIRONMENT.globals)
    ordered: list[str] = []
    for name_node in tree.find_all(nodes.Name):
        if name_node.name in undeclared and name_node.name not in ordered:
            ordered.append(name_node.name)
    return ordered


def suggest_types(source: str) -> dict[str, str]:
    """A guess at each variable's type from how the template uses it (a default for new variables)."""
    try:
        tree = ENVIRONMENT.parse(source)
    except TemplateSyntaxError:
        return {}
    guesses: dict[str, str] = {}
    for loop in tree.find_all(nodes.For):
        if isinstance(loop.iter, nodes.Name):
            guesses.setdefault(loop.iter.name, "list")
    for access in tree.find_all(nodes.Getattr):
        if isinstance(access.node, nodes.Name):
            guesses.setdefault(access.node.name, "object")
    for access in tree.find_all(nodes.Getitem):
        if isinstance(access.node, nodes.Name):
            is_index = isinstance(access.arg, nodes.Const) and isinstance(access.arg.value, int)
            guesses.setdefault(access.node.name, "list" if is_index else "object")
    return guesses


def type_matches(expected: str, value: Any) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "list":
        return isinstance(value, list)
    if expected == "object":
        return isinstance(value, dict)
    return True


def validate_values(variables: list[dict[str, Any]], values: dict[str, Any]) -> None:
    """Refuse a missing or wrong-typed value, naming the variable."""
    if not isinstance(values, dict):
        raise TemplateProblem("variables must be a JSON object of name to value")
    for spec in variables:
        name = spec["name"]
        if name not in values:
            raise TemplateProblem(f"variable '{name}' is missing", variable=name)
        expected = spec.get("type") or "string"
        if not type_matches(expected, values[name]):
            got = type(values[name]).__name__
            raise TemplateProblem(f"variable '{name}' must be a {expected}, got {got}", variable=name)


def coerce_sample(kind: str, text: str) -> Any:
    """Turn a sample value typed in a form into a value of the variable's type."""
    if kind not in VARIABLE_TYPES:
        raise ValueError(f"unknown type '{kind}'")
    if kind == "string":
        return text
    text = text.strip()
    if kind == "boolean":
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0", ""):
            return False
        raise ValueError("use true or false")
    if kind == "number":
        try:
            number = float(text or "0")
        except ValueError:
            raise ValueError(f"'{text}' is not a number") from None
        return int(number) if number.is_integer() and "." not in text else number
    try:
        value = json.loads(text or ("[]" if kind == "list" else "{}"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not type_matches(kind, value):
        raise ValueError(f"JSON {'array' if kind == 'list' else 'object'} expected")
    return value


@functools.lru_cache(maxsize=1024)
def _compile(source: str):
    return ENVIRONMENT.from_string(source)


def _settings_budget() -> tuple[float, int]:
    from django.conf import settings

    return settings.TEMPLATE_RENDER_TIMEOUT_MS / 1000, settings.TEMPLATE_RENDER_MAX_CHARS


def render(
    source: str,
    values: dict[str, Any],
    *,
    where: str = "",
    timeout: float | None = None,
    max_chars: int | None = None,
) -> str:
    """Render one template with the sandbox's budgets; every failure is a TemplateProblem."""
    default_timeout, default_max = _settings_budget()
    budget = _Budget(
        deadline=time.monotonic() + (timeout if timeout is not None else default_timeout),
        max_chars=max_chars if max_chars is not None else default_max,
    )
    token = _budget.set(budget)
    try:
        template = _compile(source)
        pieces: list[str] = []
        total = 0
        for chunk in template.generate(**{name: _watch(value) for name, value in values.items()}):
            total += len(chunk)
            _check_size(total)
            _tick()
            pieces.append(chunk)
        return "".join(pieces)
    except TemplateProblem as exc:
        exc.where = exc.where or where
        raise TemplateProblem(exc.message, line=exc.line, variable=exc.variable, where=exc.where) from None
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or "syntax error", line=exc.lineno, where=where) from None
    except SecurityError as exc:
        raise TemplateProblem(f"not allowed in a prompt template: {exc}", where=where) from None
    except UndefinedError as exc:
        name = _undefined_name(str(exc))
        message = f"variable '{name}' is missing" if name else str(exc)
        raise TemplateProblem(message, variable=name, where=where) from None
    except RecursionError:
        raise TemplateProblem("the template recurses too deeply", where=where) from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise TemplateProblem(f"{type(exc).__name__}: {exc}", where=where) from None
    finally:
        _budget.reset(token)


_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


def _undefined_name(message: str) -> str | None:
    match = _UNDEFINED_NAME.match(message)
    return match.group(1) if match else None


def render_messages(messages: list[dict[str, str]], values: dict[str, Any]) -> list[dict[str, str]]:
    rendered = []
    for index, message in enumerate(messages, start=1):
        where = f"message {index} ({message['role']})"
        rendered.append({"role": message["role"], "content": render(message["content"], values, where=where)})
    return rendered
