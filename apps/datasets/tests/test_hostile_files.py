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


# --- XLSX: zip bombs are refused before parsing, large sheets go to the worker ----------------------


def test_an_xlsx_zip_bomb_is_refused_before_it_is_parsed(client_for, editor):
    """607 KB holding 177 MB of sheet XML: refused from the zip directory in well under a second, in little memory."""
    import time
    import tracemalloc

    from apps.datasets.tests.xlsx_bombs import xlsx_bomb

    bomb = xlsx_bomb(2_500_000)
    assert len(bomb) < 700 * 1024
    client = client_for(editor)
    upload(client, "bomb.xlsx", bomb)
    map_url = url("import_map", ImportJob.objects.get().token)
    client.get(map_url)  # warm up: imports and templates load once
    started = time.monotonic()
    page = client.get(map_url)
    seconds = time.monotonic() - started
    text = html.unescape(page.content.decode())
    assert "This file cannot be imported." in text
    assert "The spreadsheet unpacks to 169 MB of XML" in text and "DATASET_XLSX_MAX_UNPACKED_MB" in text
    assert seconds < 2  # 37 s before, when it was parsed (on a shared, loaded machine: generous)
    tracemalloc.start()
    client.get(map_url)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # 620 MB before


def test_an_xlsx_declaring_too_many_cells_is_refused(client_for, editor):
    from apps.datasets.tests.xlsx_bombs import xlsx_bomb

    status, page = _map_page(client_for(editor), "wide.xlsx", xlsx_bomb(10, dimension="A1:XFD1048576"))
    assert "The spreadsheet declares 17,179,869,184 cells; the limit is 5,000,000 (DATASET_XLSX_MAX_CELLS)" in page


def test_a_small_xlsx_that_unpacks_large_is_imported_in_the_background(client_for, editor, settings):
    from apps.datasets.tests.xlsx_bombs import xlsx_bomb

    settings.DATASET_ASYNC_IMPORT_BYTES = 1024 * 1024
    content = xlsx_bomb(20_000)  # about 10 KB packed, 1.4 MB of XML
    assert len(content) < 20 * 1024
    client = client_for(editor)
    status, page = _map_page(client, "big.xlsx", content)
    assert "Import in the background" in page and "question" in page
    job = ImportJob.objects.get()
    response = client.post(url("import_map", job.token), {"role-0": "input", "role-1": "input", "intent": "import"})
    assert response.status_code == 302 and response.url == url("import_status", job.token)
    job.refresh_from_db()
    assert job.status == "queued" and not DatasetVersion.objects.exists()
