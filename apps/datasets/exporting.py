"""Export a version as CSV, JSON Lines, or fine-tuning JSONL in the chat format. Generators, for streaming."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from apps.core.spreadsheet import safe_cell
from apps.prompts.content import Content, render_content
from apps.prompts.models import PromptKind

EXPORT_FORMATS = {"csv": "CSV", "jsonl": "JSON Lines", "chat": "Fine-tuning JSONL (chat)"}


class ExportProblem(Exception):
    pass


def csv_header(input_columns: list[str], metadata_columns: list[str], has_expected: bool) -> list[str]:
    header = list(input_columns)
    if has_expected:
        header.append("expected" if "expected" not in input_columns else "expected_output")
    header += [name if name not in header else f"meta_{name}" for name in metadata_columns]
    return header


def csv_lines(
    records: Iterable[dict[str, Any]], *, input_columns: list[str], metadata_columns: list[str], has_expected: bool
) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow([safe_cell(name) for name in csv_header(input_columns, metadata_columns, has_expected)])
    yield "\ufeff" + flush()  # a BOM, so Excel opens UTF-8 correctly
    for count, record in enumerate(records, start=1):
        inputs, metadata = record["input"], record.get("metadata") or {}
        row = [safe_cell(inputs.get(name)) for name in input_columns]
        if has_expected:
            row.append(safe_cell(record.get("expected")))
        row += [safe_cell(metadata.get(name)) for name in metadata_columns]
        writer.writerow(row)
        if count % 500 == 0:
            yield flush()
    yield flush()


def jsonl_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        yield (
            json.dumps(
                {
                    "input": record["input"],
                    "expected": record.get("expected"),
                    "metadata": record.get("metadata") or {},
                },
                ensure_ascii=False,
            )
            + "\n"
        )


def chat_example(content: Content, record: dict[str, Any]) -> dict[str, Any]:
    rendered = render_content(content, record["input"])
    if content.kind == PromptKind.TEXT:
        messages = [{"role": "user", "content": rendered}]
    else:
        messages = list(rendered)
    expected = record.get("expected")
    messages.append({"role": "assistant", "content": expected if isinstance(expected, str) else json.dumps(expected)})
    return {"messages": messages}


def chat_lines(records: Iterable[dict[str, Any]], content: Content) -> Iterator[str]:
    for record in records:
        yield json.dumps(chat_example(content, record), ensure_ascii=False) + "\n"
