"""Versions, sharing of items, edits, redaction and the all-or-nothing import."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from apps.audit.models import AuditEvent
from apps.datasets import import_jobs, selectors, services
from apps.datasets.models import Dataset, DatasetItem, DatasetVersion, DatasetVersionItem, ImportJob, ImportStatus
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def rows(n, prefix="t"):
    return [{"input": {"ticket": f"{prefix} {i}", "n": i}, "expected": f"answer {i}", "metadata": {}} for i in range(n)]


def contents(version):
    return [(r["input"], r["expected"], r["metadata"]) for r in selectors.version_records(version=version)]


def item_bytes(dataset):
    """The bytes of content the dataset's items hold (their JSON text)."""
    items = DatasetItem.objects.filter(dataset=dataset)
    return sum(len(json.dumps(i.input)) + len(json.dumps(i.metadata)) + len(json.dumps(i.expected)) for i in items)


@pytest.mark.django_db
def test_it_creates_a_version_from_records_in_order(project, editor):
    dataset = DatasetFactory(project=project)
    version = make_dataset_version(dataset, rows(5), actor=editor)
    assert (version.number, version.row_count) == (1, 5)
    assert version.input_columns == ["ticket", "n"]
    assert version.has_expected
    assert [r[0]["n"] for r in contents(version)] == [0, 1, 2, 3, 4]
    event = AuditEvent.objects.get(action="dataset.version_created")
    assert event.actor == editor and event.after["rows"] == 5


@pytest.mark.django_db
def test_it_stores_identical_rows_once(project, editor):
    dataset = DatasetFactory(project=project)
    records = rows(3) + rows(3)
    version = make_dataset_version(dataset, records, actor=editor)
    assert version.row_count == 6
    assert DatasetItem.objects.filter(dataset=dataset).count() == 3
    assert [r[0]["n"] for r in contents(version)] == [0, 1, 2, 0, 1, 2]


@pytest.mark.django_db
def test_it_shares_unchanged_items_so_storage_grows_with_the_change(project, editor):
    dataset = DatasetFactory(project=project)
    v1 = make_dataset_version(dataset, rows(2000), actor=editor)
    items_before, bytes_before = DatasetItem.objects.filter(dataset=dataset).count(), item_bytes(dataset)

    changed = {"input": {"ticket": "edited", "n": 7}, "expected": "new answer", "metadata": {"split": "test"}}
    v2 = services.dataset_version_edit(version=v1, actor=editor, message="Fix row 8", replace={7: changed})

    assert DatasetItem.objects.filter(dataset=dataset).count() == items_before + 1
    assert item_bytes(dataset) - bytes_before < 200  # one row's content, not a second copy of 2000 rows
    assert v2.row_count == 2000 and v2.parent == v1 and v2.number == 2
    assert contents(v2)[7] == ({"ticket": "edited", "n": 7}, "new answer", {"split": "test"})
    assert contents(v1)[7][0] == {"ticket": "t 7", "n": 7}  # the old version did not change
    shared = set(DatasetVersionItem.objects.filter(version=v1).values_list("item_id", flat=True)) & set(
        DatasetVersionItem.objects.filter(version=v2).values_list("item_id", flat=True)
    )
    assert len(shared) == 1999
    assert v2.metadata_columns == ["split"]


@pytest.mark.django_db
def test_it_reimporting_the_same_data_adds_no_items(project, editor):
    dataset = DatasetFactory(project=project)
    make_dataset_version(dataset, rows(100), actor=editor)
    make_dataset_version(dataset, rows(100) + rows(1, prefix="new"), actor=editor)
    assert DatasetItem.objects.filter(dataset=dataset).count() == 101


@pytest.mark.django_db
def test_it_deletes_appends_and_keeps_positions_contiguous(project, editor):
    dataset = DatasetFactory(project=project)
    v1 = make_dataset_version(dataset, rows(6), actor=editor)
    v2 = services.dataset_version_edit(
        version=v1,
        actor=editor,
        message="mixed",
        delete=[1, 3],
        replace={4: {"input": {"ticket": "four"}, "expected": None}},
        append=[{"input": {"ticket": "added"}}],
    )
    assert v2.row_count == 5
    positions = list(
        DatasetVersionItem.objects.filter(version=v2).order_by("position").values_list("position", flat=True)
    )
    assert positions == [0, 1, 2, 3, 4]
    assert [r[0].get("ticket") for r in contents(v2)] == ["t 0", "t 2", "four", "t 5", "added"]


@pytest.mark.django_db
def test_it_builds_large_edits_in_python_with_the_same_result(project, editor):
    dataset = DatasetFactory(project=project)
    v1 = make_dataset_version(dataset, rows(1200), actor=editor)
    v2 = services.dataset_version_edit(version=v1, actor=editor, message="drop evens", delete=range(0, 1200, 2))
    assert v2.row_count == 600
    assert [r[0]["n"] for r in contents(v2)][:3] == [1, 3, 5]


@pytest.mark.django_db
def test_it_refuses_an_edit_of_an_old_version(project, editor):
    dataset = DatasetFactory(project=project)
    v1 = make_dataset_version(dataset, rows(3), actor=editor)
    services.dataset_version_edit(version=v1, actor=editor, message="first", delete=[0])
    with pytest.raises(services.StaleVersion, match="v2 was saved since"):
        services.dataset_version_edit(version=v1, actor=editor, message="second", delete=[1])
    assert DatasetVersion.objects.filter(dataset=dataset).count() == 2


@pytest.mark.django_db
def test_it_refuses_bad_records_and_writes_nothing(project, editor):
    dataset = DatasetFactory(project=project)
    with pytest.raises(services.DatasetError, match="Row 2: 'input' must be a JSON object"):
        make_dataset_version(dataset, [{"input": {"a": 1}}, {"input": "text"}], actor=editor)
    with pytest.raises(services.DatasetError, match="Row 1: unknown keys extra"):
        make_dataset_version(dataset, [{"input": {"a": 1}, "extra": 1}], actor=editor)
    with pytest.raises(services.DatasetError, match="Row 5 does not exist"):
        v1 = make_dataset_version(dataset, rows(2), actor=editor)
        services.dataset_version_edit(version=v1, actor=editor, message="", delete=[4])
    assert DatasetVersion.objects.count() == 1 and DatasetItem.objects.count() == 2


@pytest.mark.django_db
def test_it_redacts_personal_data_into_a_new_version(project, editor):
    dataset = DatasetFactory(project=project)
    v1 = make_dataset_version(
        dataset,
        [
            {"input": {"ticket": "Mail me at ana@example.com or call +44 20 7946 0958"}, "expected": "ok"},
            {"input": {"ticket": "Card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32"}},
            {"input": {"ticket": "Nothing personal, order 2024-05-01, 1234 5678 9012 3456 fails Luhn"}},
        ],
        actor=editor,
    )
    v2 = services.dataset_version_redact(version=v1, actor=editor)
    texts = [r[0]["ticket"] for r in contents(v2)]
    assert texts == [
        "Mail me at [EMAIL] or call [PHONE]",
        "Card [CARD], IBAN [IBAN]",
        "Nothing personal, order 2024-05-01, 1234 5678 9012 3456 fails Luhn",
    ]
    assert "1 card" in v2.message and "1 email" in v2.message and v2.source == "redaction"
    assert contents(v1)[0][0]["ticket"].startswith("Mail me at ana@example.com")
    assert DatasetItem.objects.filter(dataset=dataset).count() == 5  # 3 originals + 2 redacted rows
    with pytest.raises(services.DatasetError, match="no personal data"):
        services.dataset_version_redact(version=v2, actor=editor)


def _upload(project, editor, name, content, **kwargs):
    return import_jobs.import_upload(
        project=project, actor=editor, uploaded=SimpleUploadedFile(name, content), dataset_name="tickets", **kwargs
    )


@pytest.mark.django_db
def test_it_imports_an_uploaded_file_and_removes_it(project, editor):
    job = _upload(project, editor, "support_tickets.csv", (SAMPLES / "support_tickets.csv").read_bytes())
    path = import_jobs.upload_path(job)
    assert path.exists()
    table = import_jobs.import_read(job=job, preview=True)
    from apps.datasets import importing

    job = import_jobs.import_start(job=job, mapping=importing.guess_mapping(table), message="", actor=editor)
    assert job.status == ImportStatus.DONE
    assert job.version.row_count == 10 and job.version.message == "Imported support_tickets.csv"
    assert Dataset.objects.get(project=project).name == "tickets"
    assert not path.parent.exists()


@pytest.mark.django_db
def test_a_failed_import_leaves_nothing_behind(project, editor):
    content = b"n,ticket\n1,a\n2,b\nthree,c\n"
    job = _upload(project, editor, "bad.csv", content)
    mapping = {"n": {"role": "input", "type": "number"}, "ticket": {"role": "input", "type": "string"}}
    job = import_jobs.import_start(job=job, mapping=mapping, message="", actor=editor)
    assert job.status == ImportStatus.FAILED
    assert "Row 3, column 'n': 'three' is not a number." in job.error
    assert not Dataset.objects.exists() and not DatasetVersion.objects.exists() and not DatasetItem.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="dataset.").exists()
    assert not import_jobs.upload_path(job).parent.exists()


@pytest.mark.django_db
def test_a_failed_import_into_an_existing_dataset_adds_no_version(project, editor):
    dataset = DatasetFactory(project=project)
    make_dataset_version(dataset, rows(2), actor=editor)
    job = import_jobs.import_upload(
        project=project, actor=editor, uploaded=SimpleUploadedFile("x.jsonl", b'{"a": 1}\n{"a": 2'), dataset=dataset
    )
    from apps.datasets import importing

    with pytest.raises(importing.ImportProblem):
        import_jobs.import_start(job=job, mapping={"a": {"role": "input"}}, message="", actor=editor)
    assert DatasetVersion.objects.filter(dataset=dataset).count() == 1
    assert DatasetItem.objects.filter(dataset=dataset).count() == 2


@pytest.mark.django_db
@override_settings(DATASET_MAX_UPLOAD_MB=1)
def test_it_refuses_an_upload_over_the_limit_and_keeps_nothing(project, editor):
    with pytest.raises(services.DatasetError, match=r"the limit is 1 MB"):
        _upload(project, editor, "big.csv", b"a\n" + b"x" * (1024 * 1024 + 1))
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_name_already_taken(project, editor):
    DatasetFactory(project=project, name="tickets")
    with pytest.raises(services.DatasetError, match="already exists"):
        _upload(project, editor, "a.csv", b"a\n1\n")


@pytest.mark.django_db
def test_a_row_edit_of_a_large_version_copies_rows_in_sql(project, editor, django_assert_max_num_queries):
    dataset = DatasetFactory(project=project)
    v1 = make_dataset_version(dataset, rows(5000), actor=editor)
    with django_assert_max_num_queries(20):
        v2 = services.dataset_version_edit(
            version=v1, actor=editor, message="one row", replace={4999: {"input": {"ticket": "last"}}}
        )
    assert v2.row_count == 5000
    assert contents(v2)[-1][0] == {"ticket": "last"}


def test_a_nul_character_is_refused_naming_the_row(project):
    from apps.datasets import services as dataset_services
    from apps.datasets.models import DatasetVersion

    dataset = dataset_services.dataset_create(project=project, name="nul", actor="test")
    records = [{"input": {"q": "fine"}}, {"input": {"q": "bad\x00byte"}}]
    with pytest.raises(dataset_services.DatasetError, match=r"Row 2, input: contains a NUL"):
        dataset_services.dataset_version_create_from_records(dataset=dataset, records=records, message="", actor="test")
    assert not DatasetVersion.objects.filter(dataset=dataset).exists()
