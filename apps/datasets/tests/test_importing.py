"""Reading files: every format of the shipped samples, and every kind of bad input with its message."""

from pathlib import Path

import pytest
from django.test import override_settings

from apps.datasets import importing

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def read(path: Path, **kwargs):
    fmt = importing.detect_format(path.name, path.read_bytes()[:4096])
    return importing.read_table(path, fmt, **kwargs)


def records_of(path: Path):
    table = read(path)
    return list(importing.build_records(table, importing.guess_mapping(table)))


def write(tmp_path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    "name, fmt, rows",
    [
        ("support_tickets.csv", "csv", 10),
        ("support_tickets_latin1_semicolon.csv", "csv", 4),
        ("support_tickets_utf8_bom_tab.tsv", "csv", 10),
        ("support_tickets.jsonl", "jsonl", 10),
        ("summaries.json", "json", 3),
        ("support_tickets.xlsx", "xlsx", 5),
    ],
)
def test_it_reads_every_sample_format(name, fmt, rows):
    path = SAMPLES / name
    assert importing.detect_format(path.name, path.read_bytes()[:4096]) == fmt
    records = records_of(path)
    assert len(records) == rows
    first = records[0]
    assert set(first) == {"input", "expected", "metadata"}
    assert first["expected"]


def test_it_maps_ticket_files_to_the_support_prompt_variables():
    for name in (
        "support_tickets.csv",
        "support_tickets.jsonl",
        "support_tickets.xlsx",
        "support_tickets_utf8_bom_tab.tsv",
    ):
        first = records_of(SAMPLES / name)[0]
        assert first["input"] == {
            "ticket": "My invoices page has been blank since this morning.",
            "customer_name": "Dana",
            "product": "Acme Cloud",
        }, name
        assert first["metadata"] == {"split": "test"}


def test_it_detects_latin1_and_the_semicolon():
    table = read(SAMPLES / "support_tickets_latin1_semicolon.csv")
    assert table.delimiter == ";"
    assert table.encoding.startswith("Latin-1")
    assert [row[1] for row in table.rows] == ["Dána", "Léa", "Zoë", "Sørën"]


def test_it_detects_the_bom_and_tabs():
    table = read(SAMPLES / "support_tickets_utf8_bom_tab.tsv")
    assert table.encoding == "UTF-8 with BOM"
    assert table.delimiter == "\t"
    assert table.columns[0] == "ticket"  # no BOM glued to the first name


def test_it_keeps_json_types():
    records = records_of(SAMPLES / "summaries.json")
    assert records[0]["input"]["max_words"] == 12
    assert records[2]["input"]["max_words"] == "ten"
    assert records[0]["metadata"] == {"tags": ["docs"]}


@pytest.mark.parametrize(
    "name, message",
    [
        ("empty.csv", "The file is empty."),
        ("header_only.csv", "The file has a header row but no data rows."),
        ("duplicate_columns.csv", "Duplicate column name 'ticket' (columns 1 and 3)"),
        ("extra_value_on_line_4.csv", "Line 4, column 4: this line has 4 values but the header has 3 columns"),
        ("unclosed_quote.csv", "Line 3, column 1: a quoted value is never closed."),
        ("bad_json_on_line_3.jsonl", "Line 3, column 34: not valid JSON (Expecting value)."),
        ("not_an_array.json", "A JSON file must hold an array of objects; this one holds an object."),
        ("unknown_encoding.csv", "Unknown encoding: byte 0x81 on line 2"),
        ("binary.csv", "This file is not text"),
        ("not_really.xlsx", "This is not a readable XLSX file"),
    ],
)
def test_it_refuses_each_broken_sample_with_a_clear_message(name, message):
    with pytest.raises(importing.ImportProblem) as caught:
        read(SAMPLES / "broken" / name)
    assert message in str(caught.value)


def test_it_names_a_short_line(tmp_path):
    path = write(tmp_path, "short.csv", "a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(importing.ImportProblem, match=r"Line 3, column 3: this line has 2 values but the header has 3"):
        read(path)


def test_it_refuses_a_column_without_a_name(tmp_path):
    path = write(tmp_path, "noname.csv", "a,,c\n1,2,3\n")
    with pytest.raises(importing.ImportProblem, match="Column 2 has no name"):
        read(path)


def test_it_refuses_a_jsonl_line_that_is_not_an_object(tmp_path):
    path = write(tmp_path, "list.jsonl", '{"a": 1}\n[1, 2]\n')
    with pytest.raises(
        importing.ImportProblem, match="Line 2, column 1: each line must be a JSON object, found an array"
    ):
        read(path)


def test_it_refuses_an_empty_json_array(tmp_path):
    with pytest.raises(importing.ImportProblem, match="the JSON array has no rows"):
        read(write(tmp_path, "empty.json", "[]"))


def test_it_refuses_a_whitespace_only_file(tmp_path):
    with pytest.raises(importing.ImportProblem, match="The file is empty."):
        read(write(tmp_path, "blank.csv", b"\xef\xbb\xbf  \n\n"))


@override_settings(DATASET_MAX_UPLOAD_MB=1)
def test_it_refuses_a_file_over_the_size_limit(tmp_path):
    path = write(tmp_path, "big.csv", "a\n" + "x" * (1024 * 1024 + 10) + "\n")
    with pytest.raises(importing.ImportProblem, match=r"the limit is 1 MB \(DATASET_MAX_UPLOAD_MB\)"):
        read(path)


@override_settings(DATASET_MAX_ROWS=3)
def test_it_refuses_more_rows_than_the_limit(tmp_path):
    path = write(tmp_path, "rows.csv", "a\n1\n2\n3\n4\n")
    with pytest.raises(importing.ImportProblem, match=r"The file has 4 rows; the limit is 3 \(DATASET_MAX_ROWS\)"):
        read(path)


@override_settings(DATASET_MAX_CELL_CHARS=10)
def test_it_refuses_a_cell_over_the_size_limit(tmp_path):
    path = write(tmp_path, "cell.csv", "a,b\nshort,ok\nok," + "y" * 11 + "\n")
    with pytest.raises(
        importing.ImportProblem, match=r"Row 2, column 'b': a value of 11 characters is over the limit of 10"
    ):
        read(path)


def test_it_reads_quoted_values_with_commas_and_newlines(tmp_path):
    path = write(tmp_path, "quoted.csv", 'ticket,customer_name\n"Hello, world\nsecond line",Dana\n')
    table = read(path)
    assert table.rows == [("Hello, world\nsecond line", "Dana")]


def test_it_keeps_na_and_empty_cells_as_text(tmp_path):
    table = read(write(tmp_path, "na.csv", "a,b\nNA,\nnull,x\n"))
    assert table.rows == [("NA", ""), ("null", "x")]


def test_it_converts_types_chosen_in_the_mapping(tmp_path):
    table = read(write(tmp_path, "typed.csv", 'n,flag,items,text\n3,true,"[1, 2]",007\n2.5,no,[],x\n'))
    mapping = importing.guess_mapping(table)
    assert [mapping[c]["type"] for c in table.columns] == ["number", "boolean", "json", "string"]
    records = list(importing.build_records(table, mapping))
    assert records[0]["input"] == {"n": 3, "flag": True, "items": [1, 2], "text": "007"}
    assert records[1]["input"] == {"n": 2.5, "flag": False, "items": [], "text": "x"}


def test_it_names_the_row_and_column_of_a_bad_value(tmp_path):
    table = read(write(tmp_path, "typed.csv", "n\n1\nabc\n"))
    with pytest.raises(importing.ImportProblem, match=r"Row 2, column 'n': 'abc' is not a number."):
        list(importing.build_records(table, {"n": {"role": "input", "type": "number"}}))


def test_it_refuses_a_mapping_without_inputs_or_with_two_expected_columns(tmp_path):
    table = read(write(tmp_path, "m.csv", "a,b\n1,2\n"))
    with pytest.raises(importing.ImportProblem, match="Choose at least one input column."):
        list(importing.build_records(table, {"a": {"role": "expected"}, "b": {"role": "ignore"}}))
    with pytest.raises(importing.ImportProblem, match="Only one column can be the expected output"):
        importing.check_mapping(["a", "b", "c"], {"a": {"role": "expected"}, "b": {"role": "expected"}})


def test_it_reads_only_the_head_for_a_preview(tmp_path):
    path = write(tmp_path, "long.csv", "a\n" + "".join(f"{i}\n" for i in range(200)))
    table = read(path, limit=50)
    assert table.row_count == 50
    assert table.complete is False
