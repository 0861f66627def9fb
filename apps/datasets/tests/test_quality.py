import pytest

from apps.datasets import quality


@pytest.mark.parametrize("digits, ok", [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True)])
def test_it_checks_luhn(digits, ok):
    assert quality.luhn_ok(digits) is ok


@pytest.mark.parametrize(
    "iban, ok",
    [("GB82 WEST 1234 5698 7654 32", True), ("DE89370400440532013000", True), ("GB82WEST12345698765433", False)],
)
def test_it_checks_iban_mod_97(iban, ok):
    assert quality.iban_ok(iban) is ok


def test_it_finds_each_kind_of_personal_data():
    text = "a@b.io, +1 (555) 123-4567, 5500 0000 0000 0004, DE89 3704 0044 0532 0130 00"
    kinds = [kind for kind, _, _ in quality.find_pii(text)]
    assert kinds == ["email", "phone", "card", "iban"]


@pytest.mark.parametrize("text", ["order 2024-05-01", "version 1.2.3", "call 12", "1234 5678 9012 3456", "id 12345"])
def test_it_does_not_flag_ordinary_numbers(text):
    assert quality.find_pii(text) == []


def test_the_report_counts_missing_empty_and_duplicates():
    records = [
        {"item_id": 1, "input": {"q": "How are you?", "lang": "en"}, "expected": "fine", "metadata": {"split": "a"}},
        {"item_id": 1, "input": {"q": "How are you?", "lang": "en"}, "expected": "fine", "metadata": {"split": "a"}},
        {"item_id": 2, "input": {"q": "how are you", "lang": "en"}, "expected": "", "metadata": {"split": "b"}},
        {"item_id": 3, "input": {"q": "", "lang": "en"}, "expected": None, "metadata": {}},
        {"item_id": 4, "input": {"lang": "de"}, "expected": "x", "metadata": {"split": "a"}},
    ]
    report = quality.build_report(
        records,
        input_columns=["q", "lang"],
        metadata_columns=["split"],
        has_expected=True,
        category_column="metadata:split",
    )
    by_key = {c.key: (c.missing, c.empty, c.filled) for c in report.columns}
    assert by_key == {"input:q": (1, 1, 3), "input:lang": (0, 0, 5), "expected": (1, 1, 3), "metadata:split": (1, 0, 4)}
    assert report.exact_duplicate_rows == 1 and report.exact_groups == [[1, 2]]
    assert report.near_duplicate_rows == 2 and report.near_groups == [[1, 2, 3]]
    assert dict(report.categories) == {"a": 3, "b": 1, "(missing)": 1}
    assert report.length_summary["max"] == len("How are you?") + 2


def test_the_report_hands_plotly_figures_to_the_page_script_without_inline_script():
    html = quality.length_figure_html([1, 2, 3, 50, 50])
    assert 'id="length-chart" data-figure="' in html and "&quot;type&quot;:&quot;bar&quot;" in html
    assert "<script" not in html and "cdn" not in html.lower()
    assert 'data-figure="' in quality.category_figure_html([("a", 3), ("b", 1)])


def test_the_report_is_fast_enough_for_large_versions():
    import time

    records = [
        {
            "item_id": i,
            "input": {"ticket": f"My order {i} never arrived, please help", "n": i},
            "expected": "x",
            "metadata": {},
        }
        for i in range(20_000)
    ]
    started = time.perf_counter()
    report = quality.build_report(records, input_columns=["ticket", "n"], metadata_columns=[], has_expected=True)
    assert report.row_count == 20_000
    assert time.perf_counter() - started < 5
