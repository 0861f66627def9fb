"""The Jinja2 sandbox for prompt templates: parse, find variables, validate values, render, bounded.

This module is the one source of the sandbox: Prompt Studio's server imports it
(apps/prompts/sandbox.py re-exports it with the server's settings) and the
client renders with it, so a limit fixed here holds wherever a template runs.
It imports nothing from the server; it needs only the standard library and Jinja2.

Templates come from users. Two layers bound what one costs:

1. In-process guards that fail fast with a clear message: an immutable sandbox
   with StrictUndefined and no loader (no import or extends; an include names a
   snippet the caller passed in, see "Snippets" below, never a file); unknown
   filters and tests refused when parsing, with the line; a deadline checked at
   every attribute and item access, call, operator, loop step and output chunk;
   a cap on the output; and size checks before every operation that can grow a
   value (``*``, ``**``, ``+``, ``~``, ``%``, ``str.format``, padding,
   ``replace``, ``join``, ``|string``/``|tojson``/``|pprint``, namespace writes,
   ``batch``/``slice`` fills).
2. A hard bound: any template that is not *plain* renders in a small pool of
   worker processes, each with an address-space limit (RLIMIT_AS) and a CPU
   limit (RLIMIT_CPU), killed when the wall-clock limit passes. A single heavy C
   operation (a big-integer power, a regular expression that backtracks) holds
   the GIL of that worker only, never the caller's. A *plain* template (output,
   conditions, one level of ``for`` over the caller's data, attribute and item
   access, a short list of filters whose cost is linear) cannot do that: it
   renders in-process, with the guards, without a process round trip; one still
   rendering after IN_PROCESS_SECONDS of its thread's CPU time (not the wall
   clock: a busy process's other threads must not push a trivial render out)
   finishes in a worker.

Snippets. ``{% include "name@label" %}`` includes another prompt's text. The
sandbox has no loader: the caller passes the texts in (``includes=``, a tree
``{ref: {"source": text, "includes": {...}}}`` that ``include_tree`` builds from
the pins a saved version holds), and each include is inlined into the one
template tree before it is compiled, in a scope of its own (a ``set`` in a
snippet stays in it). So every guard above applies to the snippet's part as to
the rest: one deadline, one output cap, and a composition with anything heavy
in any snippet renders in a worker process. The composition itself is bounded:
at most MAX_INCLUDE_DEPTH levels, MAX_INCLUDES includes and MAX_COMPOSED_CHARS
characters of template text in all (counting a snippet each time it is used).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gc
import json
import math
import os
import re
import select
import string
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, pass_eval_context
from jinja2.visitor import NodeTransformer

VARIABLE_TYPES = ("string", "number", "boolean", "list", "object")
RENDER_TIMEOUT_SECONDS = 0.2  # the server's TEMPLATE_RENDER_TIMEOUT_MS default
RENDER_MAX_CHARS = 200_000  # the server's TEMPLATE_RENDER_MAX_CHARS default
MAX_SOURCE_CHARS = 100_000  # the server's TEMPLATE_MAX_SOURCE_CHARS default
RENDER_WORKERS = 2  # the server's TEMPLATE_RENDER_WORKERS default
RENDER_MEMORY_MB = 256  # the server's TEMPLATE_RENDER_MEMORY_MB default
IN_PROCESS_SECONDS = 0.025  # a plain template still rendering after this finishes in a worker process
MAX_RANGE = 10_000
MAX_INT_BITS = 16_000  # about 4,800 digits, just above what Python will print (4,300)
MAX_FORMAT_WIDTH = 9_999
MAX_FILL = 10_000
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")
_PADDING_METHODS = {"center", "ljust", "rjust", "zfill"}
MAX_INCLUDE_DEPTH = 5  # a snippet may include a snippet, five levels deep at most
MAX_INCLUDES = 50  # include tags in one composed template, counted each time a snippet is used
MAX_COMPOSED_CHARS = 200_000  # template text of a prompt with all its snippets, counting each use
# What an include names: a prompt and one of its labels (`latest` is the newest version at save time).
INCLUDE_REF = re.compile(r"^([a-z0-9][a-z0-9._-]{0,99})@([a-z0-9][a-z0-9._-]{0,49})$")


class TemplateProblem(Exception):
    """A template that cannot be saved or rendered; the message is shown to the user as is."""

    def __init__(self, message: str, *, line: int | None = None, variable: str | None = None, where: str = ""):
        self.message = message
        self.line = line
        self.variable = variable
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}line {line}: {message}" if line else f"{prefix}{message}")


class _OutOfTime(TemplateProblem):
    """The render passed its deadline (a plain template that runs long in-process moves to a worker)."""


# --- budgets -----------------------------------------------------------------------------------------------


@dataclass
class _Budget:
    deadline: float
    max_chars: int
    shown_timeout: float  # the limit the user set, for the message
    range_steps: int = 0
    clock: Callable[[], float] = time.monotonic  # what the deadline is read on (see _render_here)


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


class _GarbageCollectorClock:
    """Seconds spent in Python's garbage collector, so a render's deadline counts only the render's own time.

    A full collection in a large process (a busy web worker, a long test run) can pause every thread for a
    few hundred milliseconds; a trivial template that happened to be rendering then would be refused as too
    slow. Only the in-process deadline uses this clock: a render worker is still killed by the wall clock.
    """

    def __init__(self) -> None:
        self.paused = 0.0
        self.started: float | None = None

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.monotonic()
        elif self.started is not None:
            self.paused += time.monotonic() - self.started
            self.started = None


_collector = _GarbageCollectorClock()
gc.callbacks.append(_collector)


def _clock() -> float:
    """time.monotonic() without the time the garbage collector paused the process."""
    return time.monotonic() - _collector.paused


def _thread_clock() -> float:
    """CPU seconds of this thread without the garbage collector's pauses: what a plain template's in-process
    render costs itself. Waiting for the GIL while the process's other threads run (an experiment worker's
    calls loop) does not count, so a trivial render on a busy worker is not sent to a render process."""
    return time.thread_time() - _collector.paused


def _time_limit_message(timeout: float) -> str:
    return f"rendering took longer than the time limit ({timeout * 1000:.0f} ms); simplify loops in the template"


def _tick() -> None:
    budget = _budget.get()
    if budget is not None and budget.clock() > budget.deadline:
        raise _OutOfTime(_time_limit_message(budget.shown_timeout))


def _limit() -> int:
    budget = _budget.get()
    return budget.max_chars if budget is not None else RENDER_MAX_CHARS


def _check_size(length: int | float) -> None:
    if length > _limit():
        raise TemplateProblem(f"the output would exceed the limit of {_limit():,} characters")


def _weight(value: Any, limit: int) -> int:
    """About how many characters `value` takes as text, counted only up to just past `limit`.

    Shared references count each time they appear (as str() would print them),
    so `[x, x]` built 40 times over costs 2**40, not the memory it holds.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, Namespace):
            attrs = item._Namespace__attrs  # type: ignore[attr-defined]
            total += 12 + 4 * len(attrs)
            stack.extend(attrs.values())
        else:
            total += 16
        if total > limit:
            return total
    return total


def _check_weight(*values: Any, extra: int = 0) -> None:
    limit = _limit()
    total = extra
    for value in values:
        total += _weight(value, limit - total)
        if total > limit:
            break
    _check_size(total)


def _check_percent(template: str, arguments: Any) -> None:
    for match in _PERCENT_SPEC.finditer(template):
        for number in match.groups():
            if number == "*" or (number and int(number) > MAX_FORMAT_WIDTH):
                raise TemplateProblem(
                    f"format widths above {MAX_FORMAT_WIDTH:,} (or taken from arguments) are not allowed"
                )
    _check_weight(template, arguments)


def _check_brace_format(template: str, args: Any, kwargs: Any) -> None:
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateProblem(f"bad format string: {exc}") from None
    for _literal, _name, spec, _conversion in fields:
        if not spec:
            continue
        if "{" in spec:
            raise TemplateProblem("format widths taken from arguments are not allowed")
        for number in re.findall(r"\d+", spec):
            if int(number) > MAX_FORMAT_WIDTH:
                raise TemplateProblem(
                    f"format widths above {MAX_FORMAT_WIDTH:,} (or taken from arguments) are not allowed"
                )
    _check_weight(template, args, kwargs)


def _check_int_bits(bits: float) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateProblem(f"numbers are limited to {MAX_INT_BITS:,} bits (about {MAX_INT_BITS * 3 // 10:,} digits)")


# --- budgeted iteration --------------------------------------------------------------------------------------


def _ticking_iter(items: Iterable[Any]) -> Iterable[Any]:
    budget = _budget.get()
    for index, item in enumerate(items):
        if budget is not None and index % 16 == 15:  # cheap check; _tick reads the clock
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
            if budget.range_steps % 16 == 0:
                _tick()
        yield number


class _BoundedNamespace(Namespace):
    """namespace() whose attributes cannot grow past the output limit (`{% set ns.x = ns.x ~ ns.x %}`)."""

    def __setitem__(self, name: str, value: Any) -> None:
        _tick()
        _check_weight(value)
        super().__setitem__(name, value)


def _namespace(*args: Any, **kwargs: Any) -> Namespace:
    _check_weight(args, kwargs)
    return _BoundedNamespace(*args, **kwargs)


# --- filters with size checks --------------------------------------------------------------------------------


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
    from jinja2.filters import do_indent

    text = str(value)
    prefix_length = int(width) if not isinstance(width, str) else len(width)
    _check_size(len(text) + prefix_length * (text.count("\n") + 1))
    return do_indent(text, width, first, blank)


def _filter_format(value: Any, *args: Any, **kwargs: Any) -> str:
    from jinja2.filters import do_format

    _check_percent(str(value), (args, kwargs))
    result = do_format(str(value), *args, **kwargs)
    _check_size(len(result))
    return result


@pass_eval_context
def _filter_join(eval_ctx, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    from jinja2.filters import sync_do_join

    items = list(value)
    _check_weight(items, extra=len(str(d)) * max(0, len(items) - 1))
    return sync_do_join(eval_ctx, items, d, attribute)


def _checked_text_filter(name: str):
    from jinja2 import filters

    original = filters.FILTERS[name]

    def checked(*args: Any, **kwargs: Any) -> Any:
        value = args[1] if getattr(original, "jinja_pass_arg", None) else args[0]
        _check_weight(value)
        return original(*args, **kwargs)

    checked.jinja_pass_arg = getattr(original, "jinja_pass_arg", None)  # type: ignore[attr-defined]
    return checked


def _filter_batch(value: Iterable[Any], linecount: int, fill_with: Any = None):
    from jinja2.filters import do_batch

    if int(linecount) > MAX_FILL:
        raise TemplateProblem(f"batch() is limited to {MAX_FILL:,} items a batch")
    return do_batch(value, linecount, fill_with)


def _filter_slice(value: Iterable[Any], slices: int, fill_with: Any = None):
    from jinja2.filters import sync_do_slice

    if int(slices) > MAX_FILL:
        raise TemplateProblem(f"slice() is limited to {MAX_FILL:,} slices")
    return sync_do_slice(value, slices, fill_with)


def _finalize(value: Any) -> Any:
    if not isinstance(value, str):
        _check_weight(value)
    return value


# --- the environment -------------------------------------------------------------------------------------------


class PromptSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                    _check_size(_weight(sequence, _limit()) * max(times, 0))
            if isinstance(left, int) and isinstance(right, int):
                _check_int_bits(left.bit_length() + right.bit_length())
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0:
                _check_int_bits(max(left.bit_length(), 1) * right)
            elif isinstance(right, (int, float)) and abs(right) > MAX_INT_BITS:
                raise TemplateProblem(f"exponents are limited to {MAX_INT_BITS:,}")
        elif operator == "%" and isinstance(left, str):
            _check_percent(left, right)
        elif operator == "+" and not (isinstance(left, (int, float)) and isinstance(right, (int, float))):
            _check_weight(left, right)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = str(value.__self__)

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_brace_format(template, args, kwargs)
            result = wrapped(*args, **kwargs)
            _check_size(len(result))
            return result

        return functools.update_wrapper(checked, value)

    def call(__self, __context, __obj, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        _tick()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name in _PADDING_METHODS and args:
                _check_size(int(args[0]))
            elif name == "replace" and len(args) >= 2:
                _filter_replace(owner, *args[:3])
            elif name == "expandtabs":
                _check_size(len(owner) * int(args[0] if args else 8))
            elif name == "join" and args:
                items = list(args[0])
                _check_weight(items, extra=len(owner) * max(0, len(items) - 1))
                args = (items, *args[1:])
        return super().call(__context, __obj, *args, **kwargs)


def _concat(*parts: Any) -> str:
    _tick()
    _check_weight(parts)
    return "".join(str(part) for part in parts)


def _make_environment() -> PromptSandbox:
    environment = PromptSandbox(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=400,
        finalize=_finalize,
    )
    environment.globals = {"range": _bounded_range, "dict": dict, "namespace": _namespace}
    environment.filters.update(
        {
            "replace": _filter_replace,
            "center": _filter_center,
            "indent": _filter_indent,
            "format": _filter_format,
            "join": _filter_join,
            "batch": _filter_batch,
            "slice": _filter_slice,
            "string": _checked_text_filter("string"),
            "tojson": _checked_text_filter("tojson"),
            "pprint": _checked_text_filter("pprint"),
            "list": _checked_text_filter("list"),
        }
    )
    return environment


ENVIRONMENT = _make_environment()

_FORBIDDEN_NODES = {
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.Extends: "extends",
}


# --- parsing ---------------------------------------------------------------------------------------------------


def _parse_tree(source: str, *, where: str = "") -> nodes.Template:
    """Parse, refuse unknown names (check_names) and route `~` through its size check."""
    try:
        tree = ENVIRONMENT.parse(source)
        check_names(tree, where=where)
        _concat_through_guard(tree)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or "syntax error", line=exc.lineno, where=where) from None
    except RecursionError:
        raise TemplateProblem("the template nests too deeply", where=where) from None
    except ValueError as exc:  # an integer literal past Python's digit limit
        raise TemplateProblem(f"a number in the template is too long ({str(exc).split(';')[0]})", where=where) from None
    except MemoryError:
        raise TemplateProblem("the template needs more memory than the limit", where=where) from None
    return tree


class _ConcatThroughGuard(NodeTransformer):
    """Compile `a ~ b` as a call to a size-checked join (Jinja would join first and never ask)."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:  # noqa: N802 - Jinja's visitor naming
        self.generic_visit(node)
        guard = nodes.ImportedName(f"{__name__}._concat", lineno=node.lineno)
        return nodes.Call(guard, node.nodes, [], None, None, lineno=node.lineno)


def _concat_through_guard(tree: nodes.Template) -> None:
    _ConcatThroughGuard().visit(tree)
    tree.set_environment(ENVIRONMENT)


def check_names(tree: nodes.Template, *, where: str = "") -> None:
    """Refuse a tag that reaches other templates, a malformed include and an unknown filter or test, with its line."""
    for node_type, tag in _FORBIDDEN_NODES.items():
        for node in tree.find_all(node_type):
            raise TemplateProblem(
                f"the '{tag}' tag is not supported in prompt templates", line=node.lineno, where=where
            )
    for node in tree.find_all(nodes.Include):
        _include_ref(node, where=where)
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        known = ENVIRONMENT.filters if isinstance(node, nodes.Filter) else ENVIRONMENT.tests
        if node.name not in known:
            kind = "filter" if isinstance(node, nodes.Filter) else "test"
            raise TemplateProblem(f"unknown {kind} '{node.name}'", line=node.lineno, where=where)
    for node in tree.find_all(nodes.Const):
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            if node.value.bit_length() > MAX_INT_BITS:
                raise TemplateProblem("a number in the template is too long", line=node.lineno, where=where)


def parse(
    source: str,
    *,
    where: str = "",
    max_source_chars: int | None = None,
    includes: dict[str, Any] | None = None,
) -> list[str]:
    """Parse a template and return its variables in order of first use.

    Raises TemplateProblem with the line number for a syntax error, an
    unsupported tag, an unknown filter or test, or a template longer than the maximum.
    With `includes` (an include tree), each include is inlined and the variables are those of
    the whole composition; a snippet missing from the tree is refused with the line of its include.
    Without it, include tags are only checked for their form.
    """
    limit = max_source_chars if max_source_chars is not None else MAX_SOURCE_CHARS
    if len(source) > limit:
        raise TemplateProblem(f"the template is longer than {limit:,} characters", where=where)
    tree = _parse_tree(source, where=where)
    if includes is not None:
        tree = _compose(tree, includes, where=where, composed=len(source))
    try:
        undeclared = meta.find_undeclared_variables(tree) - set(ENVIRONMENT.globals)
        name_nodes = list(tree.find_all(nodes.Name))
    except RecursionError:
        raise TemplateProblem("the template nests too deeply", where=where) from None
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or "syntax error", line=exc.lineno, where=where) from None
    ordered: list[str] = []
    for name_node in name_nodes:
        if name_node.name in undeclared and name_node.name not in ordered:
            ordered.append(name_node.name)
    return ordered


def suggest_types(source: str) -> dict[str, str]:
    """A guess at each variable's type from how the template uses it (a default for new variables)."""
    try:
        tree = ENVIRONMENT.parse(source)
    except (TemplateSyntaxError, RecursionError, ValueError, MemoryError):
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


# --- snippets: include --------------------------------------------------------------------------------------------


def _include_ref(node: nodes.Include, *, where: str = "") -> str:
    """The `name@label` an include tag names; any other form is refused with its line."""
    template = node.template
    if not (isinstance(template, nodes.Const) and isinstance(template.value, str)):
        raise TemplateProblem(
            'an include names one snippet in quotes, like {% include "tone@production" %}',
            line=node.lineno,
            where=where,
        )
    if not INCLUDE_REF.match(template.value):
        raise TemplateProblem(
            f'\'{template.value[:120]}\' is not a snippet: write "prompt-name@label", like "tone@production"',
            line=node.lineno,
            where=where,
        )
    if node.ignore_missing:
        raise TemplateProblem("'ignore missing' is not supported: a missing snippet is refused when saving",
                              line=node.lineno, where=where)  # fmt: skip
    if not node.with_context:
        raise TemplateProblem("'without context' is not supported: a snippet sees the prompt's variables",
                              line=node.lineno, where=where)  # fmt: skip
    return template.value


def include_refs(source: str, *, where: str = "") -> list[tuple[str, int]]:
    """(ref, line) of each include tag in the template, in order, each ref once (its first line)."""
    found: dict[str, int] = {}
    for node in _parse_tree(source, where=where).find_all(nodes.Include):
        found.setdefault(node.template.value, node.lineno)
    return sorted(found.items(), key=lambda item: item[1])


@dataclass
class _Composition:
    where: str
    chars: int
    includes: int = 0


class _Inliner(NodeTransformer):
    """Replace each include of one template by its snippet's tree, in a scope of its own."""

    def __init__(self, state: _Composition, tree: dict[str, Any], depth: int, root_line: int | None):
        self.state, self.tree, self.depth, self.root_line = state, tree, depth, root_line

    def visit_Include(self, node: nodes.Include) -> nodes.Scope:  # noqa: N802 - Jinja's visitor naming
        ref = node.template.value
        line = self.root_line or node.lineno  # a problem deep in a snippet is shown on the prompt's include line
        where = self.state.where
        entry = self.tree.get(ref) if isinstance(self.tree, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
            raise TemplateProblem(f"the snippet '{ref}' is not resolved: its pinned text was not given",
                                  line=line, where=where)  # fmt: skip
        if self.depth >= MAX_INCLUDE_DEPTH:
            raise TemplateProblem(f"snippets nest more than {MAX_INCLUDE_DEPTH} levels deep (at '{ref}')",
                                  line=line, where=where)  # fmt: skip
        self.state.includes += 1
        if self.state.includes > MAX_INCLUDES:
            raise TemplateProblem(f"a template may use at most {MAX_INCLUDES} includes, counting those in snippets",
                                  line=line, where=where)  # fmt: skip
        self.state.chars += len(entry["source"])
        if self.state.chars > MAX_COMPOSED_CHARS:
            raise TemplateProblem(
                f"with its snippets the template is longer than {MAX_COMPOSED_CHARS:,} characters",
                line=line,
                where=where,
            )
        try:
            snippet = _parse_tree(entry["source"])
            for block in snippet.find_all(nodes.Block):
                raise TemplateProblem("a snippet cannot define blocks", line=block.lineno)
        except TemplateProblem as exc:
            at = f"line {exc.line}: " if exc.line else ""
            raise TemplateProblem(f"in the snippet '{ref}': {at}{exc.message}", line=line, where=where) from None
        _Inliner(self.state, entry.get("includes") or {}, self.depth + 1, line).visit(snippet)
        return nodes.Scope(snippet.body, lineno=node.lineno)


def _compose(tree: nodes.Template, includes: dict[str, Any], *, where: str, composed: int) -> nodes.Template:
    """The template with every include inlined from `includes` (an include tree); refused when unresolved."""
    if not any(True for _ in tree.find_all(nodes.Include)):
        return tree
    try:
        _Inliner(_Composition(where=where, chars=composed), includes, 0, None).visit(tree)
    except RecursionError:
        raise TemplateProblem("the snippets nest too deeply", where=where) from None
    tree.set_environment(ENVIRONMENT)
    return tree


def include_tree(pins: dict[str, str], table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The include tree of a prompt from its pins and the table of pinned snippets, as REST documents carry them.

    pins: {ref: key}, e.g. {"tone@production": "tone:3"}; table: {key: {"template": text, "includes": {ref: key}}}.
    Each snippet keeps its own pins, so a snippet renders inside a prompt exactly as it does alone. The server
    builds its tree with this function too, so the studio and an app rendering offline compose alike.
    """
    count = 0

    def build(level: dict[str, str], path: tuple[str, ...]) -> dict[str, Any]:
        nonlocal count
        if not isinstance(level, dict):
            raise TemplateProblem("the snippets of this prompt are not a valid table")
        if len(path) > MAX_INCLUDE_DEPTH:
            raise TemplateProblem(f"snippets nest more than {MAX_INCLUDE_DEPTH} levels deep")
        tree: dict[str, Any] = {}
        for ref, key in level.items():
            if key in path:
                raise TemplateProblem(f"the snippets include each other in a cycle: {' → '.join([*path, key])}")
            entry = table.get(key) if isinstance(table, dict) else None
            if not isinstance(entry, dict) or not isinstance(entry.get("template"), str):
                raise TemplateProblem(f"the snippet {key} ('{ref}') is missing from the prompt's document")
            count += 1
            if count > MAX_INCLUDES:
                raise TemplateProblem(f"a template may use at most {MAX_INCLUDES} includes, counting those in snippets")
            tree[ref] = {"source": entry["template"], "includes": build(entry.get("includes") or {}, (*path, key))}
        return tree

    return build(pins or {}, ())


# --- values ------------------------------------------------------------------------------------------------------


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
    except (json.JSONDecodeError, RecursionError) as exc:
        message = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise ValueError(f"not valid JSON ({message})") from None
    if not type_matches(kind, value):
        raise ValueError(f"JSON {'array' if kind == 'list' else 'object'} expected")
    return value


# --- plain templates ----------------------------------------------------------------------------------------------

# Filters whose cost is linear in their input and whose constant arguments cannot make it grow.
_LINEAR_FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float", "forceescape",
        "int", "items", "join", "last", "length", "list", "lower", "max", "min", "reverse", "round", "safe",
        "sort", "string", "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "wordcount",
        "selectattr", "rejectattr", "map",
    }
)  # fmt: skip
_PLAIN_TESTS = frozenset(
    {
        "boolean", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "float", "ge", "greaterthan",
        "gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none", "number",
        "odd", "sameas", "sequence", "string", "true", "undefined", "upper", "==", "!=", ">", ">=", "<", "<=",
    }
)  # fmt: skip
_PLAIN_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Getattr, nodes.Getitem, nodes.If,
    nodes.Not, nodes.And, nodes.Or, nodes.Compare, nodes.Operand, nodes.CondExpr, nodes.For, nodes.Assign,
    nodes.AssignBlock, nodes.Keyword, nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair, nodes.Const,
    nodes.Filter, nodes.Test, nodes.Concat, nodes.Call, nodes.ImportedName, nodes.Slice,
    # Arithmetic but `**`: the guards check sizes before `*`, `+` and `%` run, and the others cannot grow a value.
    nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Neg, nodes.Pos,
    nodes.Scope,  # an inlined snippet: as plain as what it holds, which is checked like the rest
)  # fmt: skip
_SHORT_CONST = 200


def _short_constants(arguments: Iterable[nodes.Node]) -> bool:
    for argument in arguments:
        value = argument.value if isinstance(argument, nodes.Keyword) else argument
        if not isinstance(value, nodes.Const):
            return False
        if isinstance(value.value, str) and len(value.value) > _SHORT_CONST:
            return False
        if isinstance(value.value, int) and not isinstance(value.value, bool) and abs(value.value) > 10_000:
            return False
    return True


def _scans_outer_data(loop: nodes.For) -> bool:
    """True when a filter, test or comparison in the loop reads data from outside it (n steps times n items).

    Reading each item, or attributes of it, costs the caller's data once in
    all; `{% for x in items %}{% if x in items %}` costs it squared.
    """
    own = {name.name for name in loop.target.find_all(nodes.Name)} | {"loop"}
    if isinstance(loop.target, nodes.Name):
        own.add(loop.target.name)
    checked = [*loop.body, *([loop.test] if loop.test is not None else [])]
    for part in checked:
        kinds = (nodes.Filter, nodes.Test, nodes.Compare, nodes.BinExpr, nodes.UnaryExpr)
        operations = [part] if isinstance(part, kinds) else []
        operations += list(part.find_all(kinds))
        for operation in operations:
            if any(name.name not in own for name in operation.find_all(nodes.Name)):
                return True
    return False


def is_plain(tree: nodes.Template) -> bool:
    """True when the template's cost is linear in its size times the caller's data, with no heavy operation.

    Plain: output, conditions, comparisons, set, at most one level of `for`
    (whose filters, tests and arithmetic read only the loop's own item),
    attribute and item access, `~`, arithmetic but `**`, and the linear
    filters and tests above with short constant arguments. Anything else
    (`**`, calls, nested loops, macros, other filters) renders in the bounded
    worker pool.
    """
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _PLAIN_NODES):
            return False
        if isinstance(node, nodes.Call):  # only the guard that `~` compiles to
            if not (isinstance(node.node, nodes.ImportedName) and node.node.importname.endswith("._concat")):
                return False
        elif isinstance(node, nodes.For):
            if node.recursive:
                return False
            if any(isinstance(child, nodes.For) or any(child.find_all(nodes.For)) for child in node.body):
                return False
            if _scans_outer_data(node):
                return False
        elif isinstance(node, nodes.Filter):
            if node.name not in _LINEAR_FILTERS or node.dyn_args or node.dyn_kwargs:
                return False
            if node.name in ("map", "selectattr", "rejectattr"):
                if node.name == "map" and node.args:
                    return False
                if node.args and not all(isinstance(a, nodes.Const) and a.value in _PLAIN_TESTS for a in node.args[:1]):
                    return False
            if not _short_constants([*node.args, *node.kwargs]):
                return False
        elif isinstance(node, nodes.Test):
            if node.name not in _PLAIN_TESTS or not _short_constants([*node.args, *node.kwargs]):
                return False
    return True


# --- rendering ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    template: Any
    plain: bool


def include_key(includes: dict[str, Any] | str | None) -> str:
    """The include tree as text: the cache key of a composition (and what a worker is sent).

    Not sorted: include_tree builds a tree in the pins' order, which the studio sends sorted, so equal trees
    are equal texts; the default encoder is the fastest, and this runs at every render.
    """
    if not includes:
        return ""
    if isinstance(includes, str):  # already a key: a caller rendering one prompt often keeps it
        return includes
    try:
        return json.dumps(includes)
    except (TypeError, ValueError, RecursionError):
        raise TemplateProblem("the snippets of this template are not a valid include tree") from None


@functools.lru_cache(maxsize=1024)
def _compile(source: str, include_key: str = "") -> _Compiled:
    tree = _parse_tree(source)
    try:
        includes = json.loads(include_key) if include_key else {}
    except (ValueError, RecursionError):
        raise TemplateProblem("the snippets of this template are not a valid include tree") from None
    tree = _compose(tree, includes, where="", composed=len(source))
    try:
        return _Compiled(ENVIRONMENT.from_string(tree), is_plain(tree))
    except RecursionError:
        raise TemplateProblem("the template nests too deeply") from None


def _render_here(
    source: str,
    values: dict[str, Any],
    *,
    where: str,
    timeout: float,
    max_chars: int,
    shown_timeout: float,
    include_key: str = "",
    clock: Callable[[], float] = _clock,
) -> str:
    """Render in this process with the in-process guards; every failure is a TemplateProblem.

    `clock` reads the deadline: the wall clock (without the collector's pauses) by default, the thread's
    CPU time for the quick in-process try of a plain template."""
    budget = _Budget(deadline=clock() + timeout, max_chars=max_chars, shown_timeout=shown_timeout, clock=clock)
    token = _budget.set(budget)
    try:
        template = _compile(source, include_key).template
        try:
            watched = {name: _watch(value) for name, value in values.items()}
        except RecursionError:
            raise TemplateProblem("the variables nest too deeply") from None
        pieces: list[str] = []
        total = 0
        for chunk in template.generate(**watched):
            total += len(chunk)
            _check_size(total)
            _tick()
            pieces.append(chunk)
        return "".join(pieces)
    except TemplateProblem as exc:
        raise type(exc)(exc.message, line=exc.line, variable=exc.variable, where=exc.where or where) from None
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
    except MemoryError:
        raise TemplateProblem("the template needs more memory than the limit", where=where) from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise TemplateProblem(f"{type(exc).__name__}: {exc}", where=where) from None
    finally:
        _budget.reset(token)


_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


def _undefined_name(message: str) -> str | None:
    match = _UNDEFINED_NAME.match(message)
    return match.group(1) if match else None


def render(
    source: str,
    values: dict[str, Any],
    *,
    where: str = "",
    timeout: float | None = None,
    max_chars: int | None = None,
    includes: dict[str, Any] | str | None = None,
) -> str:
    """Render one template within the time and size limits; every failure is a TemplateProblem.

    includes: the include tree of the template's snippets (see include_tree), or its include_key;
    the limits cover the snippets too.
    """
    return _render_all([(where, source)], values, timeout=timeout, max_chars=max_chars, includes=includes)[0]


def render_messages(
    messages: list[dict[str, str]],
    values: dict[str, Any],
    *,
    timeout: float | None = None,
    max_chars: int | None = None,
    includes: dict[str, Any] | str | None = None,
) -> list[dict[str, str]]:
    """Render each message's content (one round trip to a render worker for all of them, when one is needed)."""
    sources = [(f"message {index} ({m['role']})", m["content"]) for index, m in enumerate(messages, start=1)]
    texts = _render_all(sources, values, timeout=timeout, max_chars=max_chars, includes=includes)
    return [{"role": m["role"], "content": text} for m, text in zip(messages, texts, strict=True)]


def _render_all(
    sources: list[tuple[str, str]],
    values: dict[str, Any],
    *,
    timeout: float | None,
    max_chars: int | None,
    includes: dict[str, Any] | str | None = None,
) -> list[str]:
    timeout = timeout if timeout is not None else RENDER_TIMEOUT_SECONDS
    max_chars = max_chars if max_chars is not None else RENDER_MAX_CHARS
    if not isinstance(values, dict):
        raise TemplateProblem("variables must be a JSON object of name to value")
    composed = include_key(includes)
    plain = True
    for where, source in sources:
        try:
            plain = plain and _compile(source, composed).plain
        except TemplateProblem as exc:
            raise TemplateProblem(exc.message, line=exc.line, variable=exc.variable, where=where) from None
    started = _clock()
    if plain or not _isolation.enabled:
        quick = _isolation.enabled  # a plain render that runs long here finishes in a worker instead
        try:
            texts = []
            for where, source in sources:
                remaining = timeout - (_clock() - started)
                limit = min(remaining, IN_PROCESS_SECONDS) if quick else remaining
                texts.append(
                    _render_here(
                        source,
                        values,
                        where=where,
                        timeout=limit,
                        max_chars=max_chars,
                        shown_timeout=timeout,
                        include_key=composed,
                        clock=_thread_clock if quick else _clock,
                    )  # fmt: skip
                )
            return texts
        except _OutOfTime as exc:
            if not quick or _clock() - started >= timeout:
                raise _OutOfTime(_time_limit_message(timeout), where=exc.where) from None
    remaining = timeout - (_clock() - started)
    return _pool().render(
        sources, values, timeout=remaining, max_chars=max_chars, shown_timeout=timeout, include_key=composed
    )


# --- the worker pool ---------------------------------------------------------------------------------------------


@dataclass
class _Isolation:
    # Worker processes need POSIX rlimits; elsewhere only the in-process guards apply.
    enabled: bool = os.name == "posix" and os.environ.get("PROMPT_STUDIO_RENDER_ISOLATION", "1") != "0"
    workers: int = RENDER_WORKERS
    memory_mb: int = RENDER_MEMORY_MB


_isolation = _Isolation()


def configure(*, isolation: bool | None = None, workers: int | None = None, memory_mb: int | None = None) -> None:
    """Set how non-plain templates are bounded: in worker processes (default) or in-process guards only."""
    if isolation is not None:
        _isolation.enabled = isolation
    if workers is not None:
        _isolation.workers = max(1, workers)
    if memory_mb is not None:
        _isolation.memory_mb = max(64, memory_mb)


def _send(stream, document: Any) -> None:
    data = json.dumps(document, default=str).encode()
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def _receive(stream) -> Any:
    header = stream.read(4)
    if len(header) < 4:
        raise EOFError
    (length,) = struct.unpack(">I", header)
    data = stream.read(length)
    if len(data) < length:
        raise EOFError
    return json.loads(data)


class _Worker:
    def __init__(self, memory_mb: int):
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # Nothing of the caller's environment (keys, database URLs) reaches the process that runs templates.
        env = {"PYTHONPATH": os.pathsep.join([package_root, *[p for p in sys.path if p]]), "PATH": os.defpath}
        self.memory_mb = memory_mb
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_BOOT, str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        ready, _, _ = select.select([self.process.stdout], [], [], _WORKER_START_SECONDS)
        if not ready or not _receive(self.process.stdout).get("ready"):
            self.stop()
            raise TemplateProblem("the template renderer could not start; try again in a moment")

    def render(self, request: dict[str, Any], wall_clock: float) -> dict[str, Any]:
        _send(self.process.stdin, request)
        ready, _, _ = select.select([self.process.stdout], [], [], wall_clock)
        if not ready:
            raise TimeoutError
        return _receive(self.process.stdout)

    def stop(self) -> None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # it is gone either way
            self.process.kill()
            self.process.wait(timeout=2)
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()


_WORKER_BOOT = "from prompt_studio.sandbox import _worker_main; _worker_main()"
_WORKER_RECYCLE_CPU_SECONDS = 30.0
_WORKER_START_SECONDS = 20.0
_WORKER_WAIT_SECONDS = 5.0  # beyond the renders ahead: about how long a worker may take to start on a busy machine


class _Pool:
    """A few render worker processes; a render takes one, a timed-out or crashed one is killed and replaced."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.idle: list[_Worker] = []
        self.count = 0
        self.condition = threading.Condition()

    def warm(self) -> None:
        """Start the pool's workers in the background, so one is ready while another is being replaced."""
        with self.condition:
            missing = max(0, _isolation.workers - self.count)
            self.count += missing
        for _ in range(missing):
            threading.Thread(target=self._replace, name="template-render-worker-start", daemon=True).start()

    def _take(self, wait: float) -> _Worker:
        deadline = time.monotonic() + wait
        with self.condition:
            while True:
                if self.idle:
                    worker = self.idle.pop()
                    if worker.process.poll() is None and worker.memory_mb == _isolation.memory_mb:
                        return worker
                    worker.stop()
                    self.count -= 1
                    continue
                if self.count < _isolation.workers:
                    self.count += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TemplateProblem("every template renderer is busy; try again in a moment")
                self.condition.wait(remaining)
        try:
            return _Worker(_isolation.memory_mb)
        except BaseException:
            with self.condition:
                self.count -= 1
                self.condition.notify()
            raise

    def _give_back(self, worker: _Worker, *, healthy: bool) -> None:
        if healthy:
            with self.condition:
                self.idle.append(worker)
                self.condition.notify()
            return
        worker.stop()
        threading.Thread(target=self._replace, name="template-render-worker-start", daemon=True).start()

    def _replace(self) -> None:
        """Start a worker in place of a killed one, so the next render does not wait for Python to start."""
        try:
            worker = _Worker(_isolation.memory_mb)
        except BaseException:  # noqa: BLE001 - the next render starts one itself
            with self.condition:
                self.count -= 1
                self.condition.notify()
            return
        with self.condition:
            self.idle.append(worker)
            self.condition.notify()

    def render(
        self,
        sources: list[tuple[str, str]],
        values: dict[str, Any],
        *,
        timeout: float,
        max_chars: int,
        shown_timeout: float,
        include_key: str = "",
    ) -> list[str]:
        request = {"sources": sources, "values": values, "timeout": timeout, "max_chars": max_chars,
                   "shown_timeout": shown_timeout, "include_key": include_key}  # fmt: skip
        worker = self._take(wait=timeout * 5 + _WORKER_WAIT_SECONDS)
        healthy = False
        try:
            reply = worker.render(request, wall_clock=timeout + 0.05 + timeout / 4)
            healthy = not reply.get("retire")
        except TimeoutError:
            raise _OutOfTime(_time_limit_message(shown_timeout), where=sources[0][0] if len(sources) == 1 else "")
        except (EOFError, OSError, ValueError):
            message = "rendering was stopped: the template needs more time or memory than the limits"
            raise TemplateProblem(message, where=sources[0][0] if len(sources) == 1 else "") from None
        except RecursionError:
            raise TemplateProblem("the variables nest too deeply") from None
        finally:
            self._give_back(worker, healthy=healthy)
        if "problem" in reply:
            problem = reply["problem"]
            raise TemplateProblem(
                problem["message"], line=problem["line"], variable=problem["variable"], where=problem["where"]
            )
        return reply["texts"]


_the_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _pool() -> _Pool:
    global _the_pool
    with _pool_lock:
        if _the_pool is None or _the_pool.pid != os.getpid():  # a forked child gets a pool of its own
            _the_pool = _Pool()
            _the_pool.warm()
        return _the_pool


def _worker_main() -> None:
    """The render worker: read requests on stdin, answer on stdout, within RLIMIT_AS and RLIMIT_CPU."""
    import resource

    memory = int(sys.argv[1]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    hard_cpu = int(_WORKER_RECYCLE_CPU_SECONDS) + 30
    os.nice(10)  # a hostile render yields the CPU to the web process it renders for
    resource.setrlimit(resource.RLIMIT_CPU, (hard_cpu, hard_cpu))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    _send(stdout, {"ready": True, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})
    while True:
        try:
            request = _receive(stdin)
        except EOFError:
            return  # the parent is gone
        used = _cpu_seconds()
        # SIGXCPU ends this process if it ever runs a second past the render's limit (the parent kills it first).
        resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(used + request["timeout"]) + 1, hard_cpu))
        try:
            texts = []
            started = _clock()
            for where, source in request["sources"]:
                remaining = request["timeout"] - (_clock() - started)
                texts.append(
                    _render_here(
                        source,
                        request["values"],
                        where=where,
                        timeout=remaining,
                        max_chars=request["max_chars"],
                        shown_timeout=request.get("shown_timeout", request["timeout"]),
                        include_key=request.get("include_key", ""),
                    )  # fmt: skip
                )
            reply: dict[str, Any] = {"texts": texts}
        except TemplateProblem as exc:
            reply = {"problem": {"message": exc.message, "line": exc.line, "variable": exc.variable,
                                 "where": exc.where}}  # fmt: skip
        except MemoryError:
            reply = {"problem": {"message": "the template needs more memory than the limit", "line": None,
                                 "variable": None, "where": ""}}  # fmt: skip
        reply["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reply["retire"] = _cpu_seconds() > _WORKER_RECYCLE_CPU_SECONDS  # the caller starts a fresh one
        try:
            _send(stdout, reply)
        except MemoryError:
            return
        if reply["retire"]:
            return


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
