"""The main flow in a real browser: upload → map columns → preview → import → quality report → edit → export."""

from pathlib import Path

import pytest

from apps.datasets.models import DatasetVersion

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.mark.browser
def test_it_imports_reports_edits_and_exports_in_the_browser(login_page, editor, tmp_path):
    page = login_page(editor)
    page.goto("/p/acme/datasets/")
    page.click("text=Import your first dataset")
    page.wait_for_load_state()
    page.set_input_files("#id_file", str(SAMPLES / "support_tickets.csv"))
    page.fill("#id_name", "support-tickets")
    page.click("text=Upload and preview")

    # Map: the guesses are shown; make `split` ignored, then preview without writing anything.
    page.wait_for_selector("#mapping")
    assert page.locator("select[data-column=expected]").input_value() == "expected"
    page.select_option("select[data-column=split]", "ignore")
    page.click("text=Preview rows")
    page.wait_for_selector("#mapped-preview")
    assert "My invoices page has been blank" in page.inner_text("#mapped-preview")
    assert not DatasetVersion.objects.exists()
    page.fill("#message", "First import")
    page.click("#import-button")

    page.wait_for_selector("#rows")
    assert "Imported 10 rows as v1." in page.inner_text("#messages")
    assert "First import" in page.inner_text("#version-meta")
    assert DatasetVersion.objects.get().metadata_columns == []

    page.click(".nav-tabs >> text=Quality report")
    page.wait_for_selector("#length-chart .main-svg")  # plotly drew the histogram from the vendored bundle
    assert page.inner_text("#row-count") == "10"
    assert page.inner_text("#exact-duplicates") == "1"
    assert int(page.inner_text("#pii-total")) >= 3

    page.click(".nav-tabs >> text=Rows")
    page.click("#row-2 >> text=Edit")
    page.wait_for_selector("form.row-edit")
    page.fill("form.row-edit textarea[aria-label=ticket]", "How do I export my data to Excel?")
    page.fill("form.row-edit input[aria-label='Version message']", "Excel, not CSV")
    page.click("form.row-edit >> text=Save (new version)")
    page.wait_for_selector("text=Saved v2: Excel, not CSV")
    assert "How do I export my data to Excel?" in page.inner_text("#row-2")

    page.click(".nav-tabs >> text=Export")
    page.select_option("#id_format", "csv")
    with page.expect_download() as download_info:
        page.click("#export-button")
    target = tmp_path / "export.csv"
    download_info.value.save_as(target)
    exported = target.read_text(encoding="utf-8-sig")
    assert exported.splitlines()[0] == "ticket,customer_name,product,expected"
    assert "How do I export my data to Excel?" in exported
    assert len(exported.strip().splitlines()) == 11
