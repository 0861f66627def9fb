"""Benchmark: import a generated 100,000-row CSV through the studio's import service.

Prints `import_vs_pandas: <ratio>`: the studio import's time (read, detect, map,
hash, store items and the version's rows; the service the UI and the Celery task
call) over the time of `pandas.read_csv` plus a plain `bulk_create` of the same
rows, both measured in this run on the same database. Target: <= 2.0.
Also prints the peak memory of the process after the import.

Runs standalone: `python bench/datasets.py`. It uses a temporary SQLite database
unless DATABASE_URL is set (then it creates and drops a test database there).
"""

from __future__ import annotations

import csv
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROWS = int(os.environ.get("BENCH_DATASET_ROWS", "100000"))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(workdir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ["STUDIO_DATA_DIR"] = str(workdir)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DATASET_MAX_UPLOAD_MB"] = "500"
    import django

    django.setup()


def generate_csv(path: Path, rows: int) -> None:
    rng = random.Random(42)
    products = ["Acme Cloud", "Acme Billing", "Acme Shop", "Acme Mobile"]
    names = ["Dana", "Lee", "Ana", "Sam", "Jo", "Kim", "Noor", "Alex"]
    words = "invoice page blank error login slow refund order export crash update password billing shipping".split()
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["ticket", "customer_name", "product", "expected", "split"])
        for i in range(rows):
            ticket = f"Ticket {i}: " + " ".join(rng.choice(words) for _ in range(rng.randint(6, 18)))
            writer.writerow(
                [ticket, rng.choice(names), rng.choice(products), f"Answer {i}", rng.choice(["train", "test"])]
            )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-datasets-") as tmp:
        workdir = Path(tmp)
        setup_django(workdir)
        from support.scratch import scratch_database  # bench/support/scratch.py

        with scratch_database():
            run(workdir)


def run(workdir: Path) -> None:
    import pandas as pd
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction

    from apps.accounts.models import Project
    from apps.datasets import import_jobs, importing
    from apps.datasets.models import Dataset, DatasetItem, ImportJob, ImportStatus

    path = workdir / "bench.csv"
    generate_csv(path, ROWS)
    size_mb = path.stat().st_size / 1024 / 1024
    user = get_user_model().objects.create_user("bench")
    project = Project.objects.create(name="Bench", slug="bench")

    # The studio's import: upload (kept server-side), then the same import service the UI and the task run.
    job = import_jobs.import_upload(
        project=project, actor=user, uploaded=SimpleUploadedFile("bench.csv", path.read_bytes()), dataset_name="bench"
    )
    mapping = importing.guess_mapping(import_jobs.import_read(job=job, preview=True))
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED, mapping=mapping)
    started = time.perf_counter()
    job = import_jobs.import_run(job_id=job.pk)
    studio_seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert job.status == ImportStatus.DONE, job.error
    assert job.version.row_count == ROWS

    # The baseline: pandas.read_csv and a plain bulk insert of the same rows.
    baseline_dataset = Dataset.objects.create(project=project, name="baseline")
    started = time.perf_counter()
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    objects = [
        DatasetItem(
            dataset=baseline_dataset,
            content_hash=str(index),
            input={"ticket": ticket, "customer_name": name, "product": product},
            expected=expected,
            metadata={"split": split},
        )
        for index, (ticket, name, product, expected, split) in enumerate(frame.itertuples(index=False, name=None))
    ]
    with transaction.atomic():
        DatasetItem.objects.bulk_create(objects, batch_size=5000)
    baseline_seconds = time.perf_counter() - started

    print(f"rows: {ROWS:,} ({size_mb:.1f} MB CSV), database: {transaction.get_connection().vendor}")
    print(f"studio_import_seconds: {studio_seconds:.2f}")
    print(f"pandas_plus_bulk_insert_seconds: {baseline_seconds:.2f}")
    print(f"import_vs_pandas: {studio_seconds / baseline_seconds:.2f}")
    print(f"peak_memory_mb: {peak_mb:.0f}")


if __name__ == "__main__":
    main()
