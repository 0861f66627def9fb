import csv
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.accounts.tests.factories import MembershipFactory, ProjectFactory
from apps.datasets.models import Dataset, DatasetVersion, ImportJob
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.prompts.tests.factories import PromptFactory, make_version

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
pytestmark = pytest.mark.django_db


def url(name, *args, project="acme"):
    return reverse(f"datasets:{name}", args=[project, *args])


def upload(client, name, content, dataset_name="tickets"):
    return client.post(url("import"), {"file": SimpleUploadedFile(name, content), "name": dataset_name})


def test_it_uploads_maps_previews_and_imports(client_for, editor):
    client = client_for(editor)
    response = upload(client, "support_tickets.csv", (SAMPLES / "support_tickets.csv").read_bytes())
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == url("import_map", job.token)
    page = client.get(response.url)
    assert b"My invoices page has been blank" in page.content
    assert not Dataset.objects.exists()  # nothing is written before the import
    post = {f"role-{i}": r for i, r in enumerate(["input", "input", "input", "expected", "metadata"])}
    preview = client.post(url("import_map", job.token), {**post, "intent": "preview"}, HTTP_HX_REQUEST="true")
    assert b"as they will be stored" in preview.content and not Dataset.objects.exists()
    done = client.post(url("import_map", job.token), {**post, "intent": "import", "message": "First import"})
    version = DatasetVersion.objects.get()
    assert done.status_code == 302 and done.url == url("version", version.dataset_id, 1)
    assert version.row_count == 10 and version.message == "First import"
    assert b"Sorry about that, Dana" in client.get(done.url).content


def test_it_shows_why_a_broken_file_cannot_be_imported(client_for, editor):
    client = client_for(editor)
    upload(client, "extra.csv", (SAMPLES / "broken" / "extra_value_on_line_4.csv").read_bytes())
    job = ImportJob.objects.get()
    page = client.get(url("import_map", job.token))
    assert "Line 4, column 4: this line has 4 values" in page.content.decode()


def test_it_names_a_bad_value_in_the_mapping_step(client_for, editor):
    client = client_for(editor)
    upload(client, "n.csv", b"n\n1\nx\n")
    job = ImportJob.objects.get()
    response = client.post(url("import_map", job.token), {"role-0": "input", "type-0": "number", "intent": "import"})
    assert "Row 2, column &#x27;n&#x27;: &#x27;x&#x27; is not a number." in response.content.decode()
    assert not DatasetVersion.objects.exists()


def test_an_upload_is_private_to_its_user(client_for, editor, member):
    upload(client_for(editor), "a.csv", b"a\n1\n")
    job = ImportJob.objects.get()
    other = member("editor", "olga")
    assert client_for(other).get(url("import_map", job.token)).status_code == 404


def test_strangers_get_404_and_viewers_403(client_for, project, member):
    dataset = DatasetFactory(project=project)
    make_dataset_version(dataset, [{"input": {"a": "1"}}])
    outsider = MembershipFactory(project=ProjectFactory(slug="other")).user
    client = client_for(outsider)
    assert client.get(url("version", dataset.pk, 1)).status_code == 404
    assert client.get(reverse("datasets:version", args=["other", dataset.pk, 1])).status_code == 404
    viewer = client_for(member("viewer", "vera"))
    assert viewer.get(url("version", dataset.pk, 1)).status_code == 200
    assert viewer.post(url("row_delete", dataset.pk, 1, 0)).status_code == 403
    assert viewer.get(url("import")).status_code == 403


def test_it_edits_a_row_inline_into_a_new_version(client_for, editor, project):
    dataset = DatasetFactory(project=project)
    make_dataset_version(
        dataset, [{"input": {"ticket": "old", "n": 1}, "expected": "a"}, {"input": {"ticket": "b", "n": 2}}]
    )
    client = client_for(editor)
    form = client.get(url("row", dataset.pk, 1, 0), HTTP_HX_REQUEST="true")
    assert b'name="in-0"' in form.content and b"old" in form.content
    bad = client.post(
        url("row", dataset.pk, 1, 0), {"in-0": "new", "in-1": "not json", "expected": "a"}, HTTP_HX_REQUEST="true"
    )
    assert bad.status_code == 400 and b"n: not valid JSON" in bad.content
    saved = client.post(
        url("row", dataset.pk, 1, 0),
        {"in-0": "new", "in-1": "5", "expected": "b", "metadata": '{"split": "test"}', "message": "Fix typo"},
        HTTP_HX_REQUEST="true",
    )
    assert saved["HX-Redirect"] == url("version", dataset.pk, 2)
    v2 = DatasetVersion.objects.get(number=2)
    assert v2.message == "Fix typo"
    first = v2.rows.order_by("position").first().item
    assert first.input == {"ticket": "new", "n": 5} and first.metadata == {"split": "test"}
    stale = client.post(url("row", dataset.pk, 1, 1), {"in-0": "x", "in-1": "2"}, HTTP_HX_REQUEST="true")
    assert b"was saved since" in stale.content


def test_it_adds_and_deletes_rows(client_for, editor, project):
    dataset = DatasetFactory(project=project)
    make_dataset_version(dataset, [{"input": {"ticket": "a"}}, {"input": {"ticket": "b"}}])
    client = client_for(editor)
    client.post(url("row_add", dataset.pk, 1), {"in-0": "c", "expected": "yes"})
    client.post(url("row_delete", dataset.pk, 2, 0))
    v3 = DatasetVersion.objects.get(number=3)
    assert [r.item.input["ticket"] for r in v3.rows.order_by("position")] == ["b", "c"]
    assert v3.message == "Deleted row 1"


def test_the_quality_page_reports_and_redacts(client_for, editor, project):
    dataset = DatasetFactory(project=project)
    make_dataset_version(
        dataset, [{"input": {"t": "mail x@y.com"}, "expected": "a"}, {"input": {"t": "fine"}, "expected": "b"}]
    )
    client = client_for(editor)
    page = client.get(url("quality", dataset.pk, 1))
    html = page.content.decode()
    assert 'id="pii-total">1<' in html and "vendor/plotly/plotly-cartesian.min.js" in html and 'data-figure="' in html
    client.post(url("redact", dataset.pk, 1))
    v2 = DatasetVersion.objects.get(number=2)
    assert v2.rows.order_by("position").first().item.input == {"t": "mail [EMAIL]"}


def test_it_checks_a_dataset_against_a_prompt(client_for, editor, project):
    prompt = PromptFactory(project=project, name="summarize")
    make_version(
        prompt, "Summarize in {{ max_words }} words: {{ document }}", samples={"max_words": 3, "document": "x"}
    )
    dataset = DatasetFactory(project=project)
    make_dataset_version(
        dataset,
        [
            {"input": {"document": "a", "max_words": 3}},
            {"input": {"document": "b", "max_words": "ten"}},
            {"input": {"x": 1}},
        ],
    )
    html = client_for(editor).get(url("check", dataset.pk, 1), {"prompt": "summarize"}).content.decode()
    assert "2 of 3 rows do not fit" in html
    assert "row 2: &#x27;max_words&#x27; is a string, the prompt wants a number" in html
    assert "row 3: &#x27;max_words&#x27; is missing" in html
    assert "Columns the prompt does not use: x" in html


def test_it_exports_csv_safe_from_formulas(client_for, editor, project):
    dataset = DatasetFactory(project=project)
    make_dataset_version(
        dataset,
        [{"input": {"q": '=HYPERLINK("http://evil")', "n": -3}, "expected": "@SUM(A1)", "metadata": {"tags": ["a"]}}],
    )
    response = client_for(editor).get(url("export", dataset.pk, 1), {"format": "csv"})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows == [["q", "n", "expected", "tags"], ['\'=HYPERLINK("http://evil")', "-3", "'@SUM(A1)", '["a"]']]


def test_it_exports_jsonl_that_imports_back(client_for, editor, project):
    dataset = DatasetFactory(project=project)
    records = [{"input": {"q": "ä", "n": 2}, "expected": {"label": "x"}, "metadata": {"split": "test"}}]
    make_dataset_version(dataset, records)
    client = client_for(editor)
    body = b"".join(client.get(url("export", dataset.pk, 1), {"format": "jsonl"}).streaming_content)
    assert [json.loads(line) for line in body.decode().splitlines()] == records
    upload(client, "back.jsonl", body, dataset_name="copy")
    job = ImportJob.objects.get()
    client.post(
        url("import_map", job.token),
        {"role-0": "input", "role-1": "expected", "role-2": "metadata", "intent": "import"},
    )
    copy = Dataset.objects.get(name="copy").versions.get().rows.get().item
    assert copy.as_record() == records[0]


def test_it_exports_fine_tuning_chat_jsonl(client_for, editor, project):
    prompt = PromptFactory(project=project, name="support-reply")
    make_version(
        prompt,
        kind="chat",
        messages=[
            {"role": "system", "content": "Agent for {{ product }}"},
            {"role": "user", "content": "{{ ticket }}"},
        ],
        samples={"product": "p", "ticket": "t"},
    )
    text_prompt = PromptFactory(project=project, name="plain")
    make_version(text_prompt, "Answer: {{ ticket }}", samples={"ticket": "t"})
    dataset = DatasetFactory(project=project)
    make_dataset_version(dataset, [{"input": {"product": "Acme", "ticket": "Help"}, "expected": "Sure."}])
    client = client_for(editor)
    response = client.get(url("export", dataset.pk, 1), {"format": "chat", "prompt": "support-reply"})
    line = json.loads(b"".join(response.streaming_content))
    assert line == {
        "messages": [
            {"role": "system", "content": "Agent for Acme"},
            {"role": "user", "content": "Help"},
            {"role": "assistant", "content": "Sure."},
        ]
    }
    response = client.get(url("export", dataset.pk, 1), {"format": "chat", "prompt": "plain", "prompt_version": 1})
    assert json.loads(b"".join(response.streaming_content))["messages"][0] == {
        "role": "user",
        "content": "Answer: Help",
    }


def test_a_chat_export_refuses_rows_that_do_not_fit(client_for, editor, project):
    prompt = PromptFactory(project=project, name="plain")
    make_version(prompt, "Answer: {{ ticket }}", samples={"ticket": "t"})
    dataset = DatasetFactory(project=project)
    make_dataset_version(
        dataset, [{"input": {"ticket": "a"}, "expected": "x"}, {"input": {"other": "b"}, "expected": "y"}]
    )
    response = client_for(editor).get(url("export", dataset.pk, 1), {"format": "chat", "prompt": "plain"})
    assert response.status_code == 400
    assert "row 2: &#x27;ticket&#x27; is missing" in response.content.decode()


def test_the_list_and_nav_show_datasets(client_for, editor, project):
    DatasetFactory(project=project, name="golden-set")
    html = client_for(editor).get(url("list")).content.decode()
    assert "golden-set" in html and f'href="{url("list")}"' in html


def test_an_upload_declaring_more_than_the_limit_is_refused_before_it_is_read(client_for, editor, settings):
    settings.DATASET_MAX_UPLOAD_MB = 1
    client = client_for(editor)
    # The body is small, but it claims 50 MB: the view must answer from the header alone.
    response = client.post(
        url("import"),
        {"file": SimpleUploadedFile("big.csv", b"a,b\n1,2\n"), "name": "big"},
        CONTENT_LENGTH=str(50 * 1024 * 1024),
    )
    assert response.status_code == 413
    assert b"the limit is 1 MB (DATASET_MAX_UPLOAD_MB). Nothing was uploaded." in response.content
    assert not ImportJob.objects.exists()


def test_an_oversized_upload_from_a_stranger_is_still_a_404(client_for, project, member, settings):
    from apps.accounts.tests.factories import UserFactory

    settings.DATASET_MAX_UPLOAD_MB = 1
    response = client_for(UserFactory()).post(url("import"), {"name": "x"}, CONTENT_LENGTH=str(50 * 1024 * 1024))
    assert response.status_code == 404


def test_the_upload_form_still_checks_csrf(editor):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    response = upload(client, "support_tickets.csv", (SAMPLES / "support_tickets.csv").read_bytes())
    assert response.status_code == 403 and b"CSRF" in response.content
    assert not ImportJob.objects.exists()
