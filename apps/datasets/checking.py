"""Check a dataset version against a prompt version's variables: what is missing, what has the wrong type."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from apps.prompts.sandbox import type_matches

MAX_ROWS_SHOWN = 50


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null"


@dataclass
class VariableCheck:
    name: str
    type: str
    present: int = 0
    missing: int = 0
    wrong_type: int = 0
    found_types: dict[str, int] = field(default_factory=dict)  # a dict: templates cannot read a Counter's .items
    missing_rows: list[int] = field(default_factory=list)
    wrong_rows: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.wrong_type


@dataclass
class PromptCheck:
    variables: list[VariableCheck]
    row_count: int = 0
    bad_rows: int = 0
    row_problems: list[tuple[int, list[str]]] = field(default_factory=list)
    unused_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.bad_rows == 0


def check_records(
    records: Iterable[dict[str, Any]], *, variables: list[dict[str, Any]], input_columns: list[str]
) -> PromptCheck:
    checks = [VariableCheck(spec["name"], spec.get("type") or "string") for spec in variables]
    result = PromptCheck(variables=checks)
    used = {check.name for check in checks}
    result.unused_columns = [column for column in input_columns if column not in used]
    for row, record in enumerate(records, start=1):
        inputs = record["input"]
        problems = []
        for check in checks:
            if check.name not in inputs:
                check.missing += 1
                if len(check.missing_rows) < MAX_ROWS_SHOWN:
                    check.missing_rows.append(row)
                problems.append(f"'{check.name}' is missing")
                continue
            value = inputs[check.name]
            found = type_name(value)
            check.found_types[found] = check.found_types.get(found, 0) + 1
            if type_matches(check.type, value):
                check.present += 1
            else:
                check.wrong_type += 1
                if len(check.wrong_rows) < MAX_ROWS_SHOWN:
                    check.wrong_rows.append(row)
                problems.append(f"'{check.name}' is a {type_name(value)}, the prompt wants a {check.type}")
        result.row_count = row
        if problems:
            result.bad_rows += 1
            if len(result.row_problems) < MAX_ROWS_SHOWN:
                result.row_problems.append((row, problems))
    return result
