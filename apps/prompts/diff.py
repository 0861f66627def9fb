"""Side-by-side, word-level diffs of two versions: text or messages, model config and variables."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString

_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass
class DiffRow:
    kind: str  # equal, replace, delete, insert
    left_number: int | None
    left: SafeString
    right_number: int | None
    right: SafeString


def _deleted(text: str) -> SafeString:
    return format_html('<del class="diff-del">{}</del>', text)


def _inserted(text: str) -> SafeString:
    return format_html('<ins class="diff-ins">{}</ins>', text)


def _words(left: str, right: str) -> tuple[SafeString, SafeString]:
    a, b = _TOKENS.findall(left), _TOKENS.findall(right)
    left_html, right_html = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        old, new = "".join(a[i1:i2]), "".join(b[j1:j2])
        if op == "equal":
            left_html.append(escape(old))
            right_html.append(escape(new))
            continue
        if old:
            left_html.append(_deleted(old))
        if new:
            right_html.append(_inserted(new))
    # Every piece was escaped or built by format_html above.
    return SafeString("".join(left_html)), SafeString("".join(right_html))


def text_diff(left: str, right: str) -> list[DiffRow]:
    """Line-aligned rows; changed lines are diffed word by word."""
    a, b = left.splitlines(), right.splitlines()
    rows: list[DiffRow] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                rows.append(DiffRow("equal", i1 + k + 1, escape(a[i1 + k]), j1 + k + 1, escape(b[j1 + k])))
            continue
        span = max(i2 - i1, j2 - j1)
        for k in range(span):
            has_left, has_right = i1 + k < i2, j1 + k < j2
            old = a[i1 + k] if has_left else ""
            new = b[j1 + k] if has_right else ""
            if has_left and has_right:
                left_html, right_html = _words(old, new)
                kind = "replace"
            elif has_left:
                left_html, right_html, kind = _deleted(old), SafeString(""), "delete"
            else:
                left_html, right_html, kind = SafeString(""), _inserted(new), "insert"
            rows.append(
                DiffRow(
                    kind, i1 + k + 1 if has_left else None, left_html, j1 + k + 1 if has_right else None, right_html
                )
            )
    return rows


def messages_as_text(kind: str, template: str, messages: list[dict[str, str]]) -> str:
    if kind == "text":
        return template
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def _show(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


@dataclass
class FieldChange:
    name: str
    left: str
    right: str

    @property
    def changed(self) -> bool:
        return self.left != self.right


def config_diff(left: dict[str, Any], right: dict[str, Any]) -> list[FieldChange]:
    keys = sorted(set(left) | set(right))
    return [FieldChange(key, _show(left.get(key)), _show(right.get(key))) for key in keys]


def variables_diff(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> list[FieldChange]:
    by_name_left = {spec["name"]: spec for spec in left}
    by_name_right = {spec["name"]: spec for spec in right}
    names = list(by_name_left) + [name for name in by_name_right if name not in by_name_left]

    def describe(spec: dict[str, Any] | None) -> str:
        if spec is None:
            return ""
        text = spec.get("type", "string")
        if spec.get("description"):
            text += f" — {spec['description']}"
        if "sample" in spec:
            text += f" (sample: {_show(spec['sample'])})"
        return text

    return [FieldChange(name, describe(by_name_left.get(name)), describe(by_name_right.get(name))) for name in names]


def _pins(side) -> dict[str, str]:
    """{ref: "name vN"} of a draft (Content.includes) or a saved version (its pins)."""
    if hasattr(side, "includes"):
        pins = side.includes
    elif getattr(side, "pk", None):
        pins = {p.ref: f"{p.snippet_version.prompt.name}:{p.snippet_version.number}"
                for p in side.include_pins.select_related("snippet_version__prompt")}  # fmt: skip
    else:
        pins = {}
    return {ref: key.replace(":", " v") for ref, key in pins.items()}


def includes_diff(left, right) -> list[FieldChange]:
    """Which snippet version each include is pinned to on each side (a re-pin changes only this)."""
    a, b = _pins(left), _pins(right)
    return [FieldChange(ref, a.get(ref, ""), b.get(ref, "")) for ref in sorted(set(a) | set(b))]


@dataclass
class VersionDiff:
    body: list[DiffRow]
    config: list[FieldChange]
    variables: list[FieldChange]
    kind_changed: bool
    includes: list[FieldChange] = field(default_factory=list)

    @property
    def body_changed(self) -> bool:
        return any(row.kind != "equal" for row in self.body)

    @property
    def unchanged(self) -> bool:
        return (
            not self.body_changed
            and not self.kind_changed
            and not any(c.changed for c in self.config)
            and not any(c.changed for c in self.variables)
            and not any(c.changed for c in self.includes)
        )


def content_diff(left, right) -> VersionDiff:
    """Diff two objects with kind, template, messages, config and variables (versions or drafts)."""
    return VersionDiff(
        body=text_diff(
            messages_as_text(left.kind, left.template, left.messages),
            messages_as_text(right.kind, right.template, right.messages),
        ),
        config=config_diff(left.config, right.config),
        variables=variables_diff(left.variables, right.variables),
        kind_changed=left.kind != right.kind,
        includes=includes_diff(left, right),
    )


def unified_diff(left, right, *, left_name: str, right_name: str) -> str:
    """A plain unified diff of two versions' text or messages, for the API, the CLI and agents."""
    lines = difflib.unified_diff(
        messages_as_text(left.kind, left.template, left.messages).splitlines(),
        messages_as_text(right.kind, right.template, right.messages).splitlines(),
        fromfile=left_name,
        tofile=right_name,
        lineterm="",
    )
    return "\n".join(lines)
