from decimal import Decimal

import pytest

from apps.core.spreadsheet import csv_download, safe_cell


@pytest.mark.parametrize(
    "value,cell",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("plain text", "plain text"),
        (-5, "-5"),
        (Decimal("-0.25"), "-0.25"),
        ("-0.25", "-0.25"),  # a number held as text is still no formula
        ("+3", "+3"),
        ("-1e-5", "-1e-5"),
        ("-0.25+A1", "'-0.25+A1"),
        ("-", "'-"),
        (None, ""),
        (True, "true"),
        ({"a": "=1"}, '{"a": "=1"}'),
    ],
)
def test_no_cell_runs_as_a_formula_but_numbers_stay_numbers(value, cell):
    assert safe_cell(value) == cell


def test_the_raw_export_prefixes_nothing():
    response = csv_download(iter([["a", "b"], ["=x", {"k": -1}]]), "out.csv", raw=True)
    assert b"".join(response.streaming_content).decode() == 'a,b\r\n=x,"{""k"": -1}"\r\n'


def test_it_streams_a_csv_attachment():
    response = csv_download(iter([["a", "b"], ["=x", 1]]), "out.csv")
    assert response["Content-Disposition"] == 'attachment; filename="out.csv"'
    assert b"".join(response.streaming_content).decode() == "a,b\r\n'=x,1\r\n"
