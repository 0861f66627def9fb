"""Uploaded files the studio cannot take are refused on the mapping page with the problem named, never a 500."""

from __future__ import annotations

import html
import json

import pytest

from apps.datasets.models import DatasetVersion, ImportJob
from apps.datasets.tests.test_views import upload, url

pytestmark = pytest.mark.django_db

DEEP = "[" * 50_000 + "]" * 50_000
HUGE = "9" * 5_000


def _map_page(client, name: str, content: bytes) -> tuple[int, str]:
    response = upload(client, name, content)
    assert response.status_code == 302, response.content[:500]
    page = client.get(url("import_map", ImportJob.objects.get().token))
    return page.status_code, html.unescape(page.content.decode())


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("nan.jsonl", b'{"q": "fine"}\n{"q": NaN}\n', "Line 2, column 7: not valid JSON (NaN is not a JSON number"),
        ("inf.json", b'[{"q": Infinity}]', "Infinity is not a JSON number"),
        ("huge.jsonl", b'{"q": ' + HUGE.encode() + b"}\n", "a number with 5,000 digits; at most 100"),
        ("huge.json", b'[{"q": 1e999}]', "the number 1e999 is too large to store"),
        ("deep.jsonl", b'{"q": ' + DEEP.encode() + b"}\n", "nested deeper than 100 levels"),
        ("deep.json", b'[{"q": ' + DEEP.encode() + b"}]", "nested deeper than 100 levels"),
    ],
)
def test_hostile_json_files_are_refused_with_the_problem_named(client_for, editor, name, content, problem):
    status, page = _map_page(client_for(editor), name, content)
    assert status == 200 and "This file cannot be imported." in page
    assert problem in page


@pytest.mark.parametrize(
    "column_type, value, problem",
    [
        ("number", HUGE, "Row 1, column 'n': a number with 5,000 digits; at most 100 are accepted"),
        ("number", "1e999", "Row 1, column 'n': '1e999' is too large to store"),
        ("json", DEEP, "Row 1, column 'n': not valid JSON (nested deeper than 100 levels"),
        ("json", json.dumps({"x": float("nan")}), "Row 1, column 'n': not valid JSON (NaN is not a JSON number"),
    ],
)
def test_hostile_values_in_typed_csv_columns_are_refused_at_import(client_for, editor, column_type, value, problem):
    client = client_for(editor)
    upload(client, "n.csv", f'n\n"{value.replace(chr(34), chr(34) * 2)}"\n'.encode())
    job = ImportJob.objects.get()
    response = client.post(url("import_map", job.token), {"role-0": "input", "type-0": column_type, "intent": "import"})
    assert response.status_code == 200
    assert problem in html.unescape(response.content.decode())
    assert not DatasetVersion.objects.exists()


@pytest.mark.parametrize(
    "content",
    [
        "question,answer\nhello,world\n".encode("utf-16-le"),  # UTF-16 without a byte order mark: valid UTF-8 with NULs
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
        b"a,b\n" + bytes(range(1, 9)) * 50 + b"\n",  # no NUL, decodes as UTF-8, but full of control characters
    ],
    ids=["utf16-without-bom", "png", "control-characters"],
)
def test_a_binary_file_named_csv_is_refused_as_not_text(client_for, editor, content):
    status, page = _map_page(client_for(editor), "data.csv", content)
    assert "This file cannot be imported." in page and "This file is not text" in page
    assert status == 200
