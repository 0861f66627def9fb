"""Reading uploaded files into rows, and rows into dataset records. No database here.

Every refusal is an ImportProblem whose message names the problem and, where
there is one, the line and column of the file (or the row and column name of
the data), so a user can fix the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from django.conf import settings

from apps.core import safejson

FORMATS = ("csv", "jsonl", "json", "xlsx")
FORMAT_NAMES = {"csv": "CSV", "jsonl": "JSON Lines", "json": "JSON array", "xlsx": "Excel (XLSX)"}
ROLES = ("input", "expected", "metadata", "ignore")
TYPES = ("auto", "string", "number", "boolean", "json")
EXPECTED_NAMES = ("expected", "expected_output", "output", "answer", "target", "completion", "ideal", "reference")
METADATA_NAMES = ("metadata", "tags", "tag", "source", "split", "id", "notes", "note")
CSV_DELIMITERS = ",;\t|"


class ImportProblem(Exception):
    """A file or mapping that cannot be imported; the message is shown to the user as is."""


class _Missing:
    """A value absent from a row (a JSON key not present), as opposed to an empty one."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


@dataclass
class Table:
    columns: list[str]
    rows: list[tuple]
    fmt: str
    encoding: str = ""
    delimiter: str = ""
    complete: bool = True  # False when only the first rows were read (a preview of a large file)
    notes: list[str] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return len(self.rows)


# --- format and encoding ---------------------------------------------------------------------------


def detect_format(filename: str, head: bytes) -> str:
    suffix = Path(filename).suffix.lower()
    if head.startswith(b"PK\x03\x04") or suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    stripped = head.lstrip(codecs.BOM_UTF8.decode("latin-1").encode("latin-1")).lstrip()
    if suffix == ".json":
        return "jsonl" if stripped.startswith(b"{") and b"\n{" in stripped else "json"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


def decode_text(raw: bytes) -> tuple[str, str]:
    """(text, encoding name): UTF-8 with or without BOM, UTF-16 with BOM, Windows-1252 / Latin-1."""
    if raw.startswith(codecs.BOM_UTF8):
        return _decode_strict(raw[3:], "utf-8"), "UTF-8 with BOM"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode_strict(raw, "utf-16"), "UTF-16"
    try:
        return raw.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ImportProblem(
            f"This file is not text: line {line} holds a NUL byte, so this is not UTF-8 or Latin-1 text "
            "(a binary file, or UTF-16 without a byte order mark). Save the file as UTF-8."
        )
    try:
        # Windows-1252 is what "Latin-1" files from Excel really are; it refuses five undefined bytes.
        return raw.decode("cp1252"), "Latin-1 (Windows-1252)"
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportProblem(
            f"Unknown encoding: byte 0x{raw[exc.start]:02x} on line {line} is neither UTF-8 nor Latin-1. "
            "Save the file as UTF-8."
        ) from None


# Control characters that text files hold (tab, line feed, form feed, carriage return) are not counted.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _check_is_text(text: str) -> None:
    """Refuse a binary file that happens to decode (UTF-16 without a BOM, an image named .csv, ...)."""
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ImportProblem(
            f"This file is not text: line {line} holds a NUL byte (a binary file, or UTF-16 without a byte order "
            "mark). Export it as CSV or JSON Lines in UTF-8."
        )
    sample = text[:65536]
    controls = len(_CONTROL.findall(sample))
    if controls > max(8, len(sample) // 100):
        raise ImportProblem(
            f"This file is not text: {controls:,} control characters in its first {len(sample):,} characters "
            "(a binary file with a text name?). Export it as CSV or JSON Lines in UTF-8."
        )


def _decode_strict(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportProblem(f"The file starts like {encoding} but line {line} is not valid {encoding}.") from None


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


# --- readers --------------------------------------------------------------------------------------


def read_table(path: Path, fmt: str, *, limit: int | None = None) -> Table:
    """Read a whole file (or its first `limit` rows) into a Table, checking the limits."""
    if fmt not in FORMATS:
        raise ImportProblem(f"Unknown format '{fmt}'; use one of {', '.join(FORMATS)}.")
    size = path.stat().st_size
    max_bytes = settings.DATASET_MAX_UPLOAD_MB * 1024 * 1024
    if size > max_bytes:
        raise ImportProblem(
            f"The file is {size / 1024 / 1024:.1f} MB; the limit is {settings.DATASET_MAX_UPLOAD_MB} MB "
            "(DATASET_MAX_UPLOAD_MB)."
        )
    if fmt == "xlsx":
        table = _read_xlsx(path, limit)
    else:
        raw = path.read_bytes()
        body = raw[3:] if raw.startswith(codecs.BOM_UTF8) else raw
        if not body.strip():
            raise ImportProblem("The file is empty.")
        text, encoding = decode_text(raw)
        _check_is_text(text)
        if not text.strip():
            raise ImportProblem("The file is empty.")
        reader = {"csv": _read_csv, "jsonl": _read_jsonl, "json": _read_json}[fmt]
        table = reader(text, limit)
        table.encoding = encoding
    _check_header(table.columns)
    if not table.rows:
        raise ImportProblem("The file has a header row but no data rows." if table.columns else "The file is empty.")
    if table.complete and table.row_count > settings.DATASET_MAX_ROWS:
        raise ImportProblem(
            f"The file has {table.row_count:,} rows; the limit is {settings.DATASET_MAX_ROWS:,} (DATASET_MAX_ROWS)."
        )
    _check_cells(table)
    return table


def _check_header(columns: list[str]) -> None:
    seen: dict[str, int] = {}
    for index, name in enumerate(columns, start=1):
        if not name.strip():
            raise ImportProblem(f"Column {index} has no name in the header row; every column needs one.")
        key = name.strip()
        if key in seen:
            raise ImportProblem(f"Duplicate column name '{key}' (columns {seen[key]} and {index}); rename one of them.")
        seen[key] = index


def _check_cells(table: Table) -> None:
    limit = settings.DATASET_MAX_CELL_CHARS
    for row_number, row in enumerate(table.rows, start=1):
        for column, value in zip(table.columns, row, strict=False):
            if isinstance(value, str):
                size = len(value)
            elif isinstance(value, (dict, list)):
                size = len(json.dumps(value, ensure_ascii=False))
            else:
                continue
            if size > limit:
                raise ImportProblem(
                    f"Row {row_number}, column '{column}': a value of {size:,} characters is over the limit of "
                    f"{limit:,} (DATASET_MAX_CELL_CHARS)."
                )


def sniff_delimiter(text: str) -> str:
    sample = text[:65536]
    first_line = sample.split("\n", 1)[0]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS)
        if dialect.delimiter in first_line:
            return dialect.delimiter
    except csv.Error:
        pass
    counts = {d: first_line.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _read_csv(text: str, limit: int | None) -> Table:
    import pandas as pd

    delimiter = sniff_delimiter(text)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            nrows=None if limit is None else limit + 2,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise ImportProblem("The file is empty.") from None
    except pd.errors.ParserError:
        _raise_csv_problem(text, delimiter)
        raise ImportProblem("The CSV file could not be read.") from None  # the scan found nothing more precise
    # pandas pads a short line with empty cells; only when the last column has an empty cell is it worth
    # scanning the file with the csv module to tell a short line from a really empty value.
    if len(frame) > 1 and (frame.iloc[1:, -1] == "").any():
        _raise_csv_problem(text, delimiter)
    columns = [str(name).strip() for name in frame.iloc[0].tolist()] if len(frame) else []
    rows = list(frame.iloc[1:].itertuples(index=False, name=None))
    complete = limit is None or len(rows) <= limit
    rows = rows[:limit] if limit else rows
    return Table(columns=columns, rows=rows, fmt="csv", delimiter=delimiter, complete=complete)


def _raise_csv_problem(text: str, delimiter: str) -> None:
    """Find the first malformed record with the csv module, to name its line and column."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    width = None
    last_line = 0
    try:
        for record in reader:
            if not record:
                last_line = reader.line_num
                continue
            if width is None:
                width = len(record)
            elif len(record) > width:
                raise ImportProblem(
                    f"Line {reader.line_num}, column {width + 1}: this line has {len(record)} values but the header "
                    f"has {width} columns (an unquoted '{_delimiter_name(delimiter)}' inside a value?)."
                )
            elif len(record) < width:
                raise ImportProblem(
                    f"Line {reader.line_num}, column {len(record) + 1}: this line has {len(record)} values but the "
                    f"header has {width} columns."
                )
            last_line = reader.line_num
    except csv.Error as exc:
        # The record that failed starts on the line after the last good one.
        line = last_line + 1
        lines = text.splitlines()
        line_text = lines[line - 1] if line <= len(lines) else ""
        column = line_text.find('"') + 1 if '"' in line_text else 1
        raise ImportProblem(f"Line {line}, column {column}: {_csv_error(str(exc))}") from None


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab"}.get(delimiter, delimiter)


def _csv_error(message: str) -> str:
    if "EOF" in message or "end of data" in message or "newline inside string" in message:
        return "a quoted value is never closed."
    return f"malformed CSV ({message})."


def _read_jsonl(text: str, limit: int | None) -> Table:
    columns: dict[str, None] = {}
    records: list[dict] = []
    complete = True
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if limit is not None and len(records) >= limit:
            complete = False
            break
        try:
            value = safejson.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportProblem(f"Line {line_number}, column {exc.colno}: not valid JSON ({exc.msg}).") from None
        if not isinstance(value, dict):
            raise ImportProblem(
                f"Line {line_number}, column 1: each line must be a JSON object, found {_json_kind(value)}."
            )
        for key in value:
            columns.setdefault(key, None)
        records.append(value)
    names = list(columns)
    if not records:
        raise ImportProblem("The file is empty.")
    if not names:
        raise ImportProblem("Every object in the file is empty ({}); there are no columns.")
    rows = [tuple(record.get(name, MISSING) for name in names) for record in records]
    return Table(columns=names, rows=rows, fmt="jsonl", complete=complete)


def _read_json(text: str, limit: int | None) -> Table:
    try:
        value = safejson.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportProblem(f"Line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}).") from None
    if not isinstance(value, list):
        raise ImportProblem(f"A JSON file must hold an array of objects; this one holds {_json_kind(value)}.")
    if not value:
        raise ImportProblem("The file is empty: the JSON array has no rows.")
    columns: dict[str, None] = {}
    for index, record in enumerate(value, start=1):
        if not isinstance(record, dict):
            raise ImportProblem(f"Element {index} of the array must be an object, found {_json_kind(record)}.")
        for key in record:
            columns.setdefault(key, None)
    names = list(columns)
    if not names:
        raise ImportProblem("Every object in the file is empty ({}); there are no columns.")
    selected = value if limit is None else value[:limit]
    rows = [tuple(record.get(name, MISSING) for name in names) for record in selected]
    return Table(columns=names, rows=rows, fmt="json", complete=limit is None or len(value) <= limit)


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?"')


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def xlsx_unpacked_bytes(path: Path) -> int:
    """What an XLSX file unpacks to, from its zip directory alone (zipfile never inflates past these sizes)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ImportProblem(f"This is not a readable XLSX file (not a zip archive: {exc}).") from None


def check_xlsx(path: Path) -> None:
    """Refuse a zip bomb before parsing: the unpacked size and the sheets' declared cell count are bounded."""
    import zipfile

    unpacked = xlsx_unpacked_bytes(path)
    limit_mb = settings.DATASET_XLSX_MAX_UNPACKED_MB
    if unpacked > limit_mb * 1024 * 1024:
        raise ImportProblem(
            f"The spreadsheet unpacks to {unpacked / 1024 / 1024:,.0f} MB of XML ({path.stat().st_size / 1024:,.0f} KB "
            f"packed); the limit is {limit_mb} MB (DATASET_XLSX_MAX_UNPACKED_MB). Save it as CSV instead."
        )
    cells = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not (info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml")):
                continue
            with archive.open(info) as sheet:
                found = _DIMENSION.search(sheet.read(8192))
            if found:
                first_col, first_row, last_col, last_row = found.groups()
                columns = _column_number(last_col or first_col) - _column_number(first_col) + 1
                rows = int(last_row or first_row) - int(first_row) + 1
                cells += max(columns, 1) * max(rows, 1)
    if cells > settings.DATASET_XLSX_MAX_CELLS:
        raise ImportProblem(
            f"The spreadsheet declares {cells:,} cells; the limit is {settings.DATASET_XLSX_MAX_CELLS:,} "
            "(DATASET_XLSX_MAX_CELLS). Save the data as CSV instead."
        )


def _read_xlsx(path: Path, limit: int | None) -> Table:
    check_xlsx(path)
    import pandas as pd

    try:
        frame = pd.read_excel(
            path, header=None, dtype=object, engine="openpyxl", nrows=None if limit is None else limit + 2
        )
    except ValueError as exc:
        raise ImportProblem(f"The spreadsheet could not be read: {exc}") from None
    except Exception as exc:  # openpyxl and zipfile raise many types for a damaged file
        raise ImportProblem(f"This is not a readable XLSX file ({type(exc).__name__}: {exc}).") from None
    frame = frame.dropna(how="all").dropna(axis=1, how="all")
    if frame.empty:
        raise ImportProblem("The file is empty: the first sheet has no cells.")
    values = [[_excel_value(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    columns = [str(v).strip() if v is not MISSING else "" for v in values[0]]
    rows = [tuple("" if v is MISSING else v for v in row) for row in values[1:]]
    complete = limit is None or len(rows) <= limit
    table = Table(columns=columns, rows=rows[:limit] if limit else rows, fmt="xlsx", complete=complete)
    table.notes.append("Only the first sheet is read.")
    return table


def _excel_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


# --- mapping -------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_BOOLEANS = {"true": True, "false": False, "yes": True, "no": False}


def guess_type(values: list[Any]) -> str:
    present = [v for v in values if v is not MISSING and v != ""]
    if not present or not all(isinstance(v, str) for v in present):
        return "auto"
    if all(_NUMBER.match(v.strip()) for v in present):
        return "number"
    if all(v.strip().lower() in _BOOLEANS for v in present):
        return "boolean"
    if all(v.strip()[:1] in "[{" for v in present):
        try:
            for v in present:
                safejson.loads(v)
        except json.JSONDecodeError:
            return "string"
        return "json"
    return "string"


def guess_mapping(table: Table) -> dict[str, dict[str, str]]:
    mapping: dict[str, dict[str, str]] = {}
    has_expected = False
    for index, column in enumerate(table.columns):
        key = column.strip().lower()
        if key in EXPECTED_NAMES and not has_expected:
            role, has_expected = "expected", True
        elif key in METADATA_NAMES:
            role = "metadata"
        else:
            role = "input"
        sample = [row[index] for row in table.rows[:200]]
        kind = guess_type(sample)
        if role == "expected" and kind in ("number", "boolean"):
            kind = "string"
        mapping[column] = {"role": role, "type": kind}
    return mapping


def check_mapping(columns: list[str], mapping: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    clean: dict[str, dict[str, str]] = {}
    for column in columns:
        entry = mapping.get(column) or {}
        role, kind = entry.get("role", "input"), entry.get("type", "auto")
        if role not in ROLES:
            raise ImportProblem(f"Column '{column}': unknown role '{role}'; use one of {', '.join(ROLES)}.")
        if kind not in TYPES:
            raise ImportProblem(f"Column '{column}': unknown type '{kind}'; use one of {', '.join(TYPES)}.")
        clean[column] = {"role": role, "type": kind}
    unknown = sorted(set(mapping) - set(columns))
    if unknown:
        raise ImportProblem(f"The mapping names columns the file does not have: {', '.join(unknown)}.")
    expected = [c for c, e in clean.items() if e["role"] == "expected"]
    if len(expected) > 1:
        raise ImportProblem(f"Only one column can be the expected output; you chose {', '.join(expected)}.")
    if not any(e["role"] == "input" for e in clean.values()):
        raise ImportProblem("Choose at least one input column.")
    return clean


def _convert(value: Any, kind: str, row_number: int, column: str) -> Any:
    if kind == "auto" or value is MISSING:
        return value
    if kind == "string":
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return MISSING
    else:
        text = None
    if kind == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if text is not None and _NUMBER.match(text):
            digits = sum(ch.isdigit() for ch in text)
            if digits > safejson.MAX_NUMBER_DIGITS:
                raise ImportProblem(
                    f"Row {row_number}, column '{column}': a number with {digits:,} digits; at most "
                    f"{safejson.MAX_NUMBER_DIGITS} are accepted (import the column as a string)."
                )
            if re.fullmatch(r"[+-]?\d+", text):
                return int(text)
            number = float(text)
            if not math.isfinite(number):
                raise ImportProblem(f"Row {row_number}, column '{column}': {_shown(value)} is too large to store.")
            return number
        raise ImportProblem(f"Row {row_number}, column '{column}': {_shown(value)} is not a number.")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        lowered = (text or str(value)).lower()
        if lowered in _BOOLEANS or lowered in ("1", "0"):
            return _BOOLEANS.get(lowered, lowered == "1")
        raise ImportProblem(f"Row {row_number}, column '{column}': {_shown(value)} is not true or false.")
    # json
    if text is None:
        return value
    try:
        return safejson.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportProblem(
            f"Row {row_number}, column '{column}': not valid JSON ({exc.msg} at character {exc.pos + 1})."
        ) from None


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def build_records(table: Table, mapping: dict[str, dict[str, str]]) -> Iterator[dict[str, Any]]:
    """Yield {input, expected, metadata} per row. A column named input/metadata holding an object is merged."""
    mapping = check_mapping(table.columns, mapping)
    plan = [
        (index, column, entry["role"], entry["type"])
        for index, column in enumerate(table.columns)
        if entry_role(mapping, column) != "ignore"
        for entry in [mapping[column]]
    ]
    simple = all(kind == "auto" for _, _, _, kind in plan)
    for row_number, row in enumerate(table.rows, start=1):
        inputs: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        expected: Any = None
        for index, column, role, kind in plan:
            value = row[index]
            if not simple:
                value = _convert(value, kind, row_number, column)
            if value is MISSING:
                continue
            if role == "input":
                if column in ("input", "inputs") and isinstance(value, dict):
                    inputs.update(value)
                else:
                    inputs[column] = value
            elif role == "expected":
                expected = value
            elif column == "metadata" and isinstance(value, dict):
                metadata.update(value)
            else:
                metadata[column] = value
        yield {"input": inputs, "expected": expected, "metadata": metadata}


def entry_role(mapping: dict[str, dict[str, str]], column: str) -> str:
    return mapping[column]["role"]


def mapping_from_post(columns: list[str], data) -> dict[str, dict[str, str]]:
    """The mapping form posts role-<i> and type-<i> per column index (column names may hold any character)."""
    mapping = {}
    for index, column in enumerate(columns):
        mapping[column] = {"role": data.get(f"role-{index}", "input"), "type": data.get(f"type-{index}", "auto")}
    return mapping
