"""Benchmark: compare two finished experiments of 2,000 rows each (scores by one evaluator, outputs that differ).

Prints `compare_vs_read_cells: <ratio>`: the time of `experiment_comparison` (per-row deltas, the most changed
rows first, the shown rows' fields and word diffs) over the time of a plain read of the same cells' outputs
and scores (two `values_list` queries into Python lists), both measured in this run on the same database.
Target: <= 5.0 (it is one page view, and the page polls it every 2 s while an experiment runs).

Runs standalone: `python bench/compare_experiments.py`. It uses a temporary SQLite database unless
DATABASE_URL is set (then it creates and drops a test database there). Cells and scores are written
directly (no model calls): this measures the comparison, not the runner.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROWS = int(os.environ.get("BENCH_COMPARE_ROWS", "2000"))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORDS = "the order was shipped on monday and arrives friday with tracking number sent by email today".split()


def setup_django(workdir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ["STUDIO_DATA_DIR"] = str(workdir)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        workdir = Path(tmp)
        setup_django(workdir)
        from support.scratch import scratch_database  # bench/support/scratch.py

        with scratch_database():
            run()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))


def run() -> None:
    from django.contrib.auth import get_user_model

    from apps.accounts.models import Project
    from apps.datasets import services as dataset_services
    from apps.experiments import comparison, services
    from apps.experiments.models import Cell, CellStatus, EvaluatorConfig, Experiment, ExperimentStatus, Score
    from apps.prompts import services as prompt_services
    from apps.prompts.content import build_content
    from apps.providers.models import EndpointKind
    from apps.providers.services import endpoint_create

    rng = random.Random(7)
    user = get_user_model().objects.create_user("bench")
    project = Project.objects.create(name="Bench", slug="bench")
    dataset = dataset_services.dataset_create(project=project, name="rows", actor=user)
    records = [{"input": {"question": _sentence(rng), "n": i}, "expected": _sentence(rng)} for i in range(ROWS)]
    version = dataset_services.dataset_version_create_from_records(
        dataset=dataset, records=records, message="bench", actor=user
    )
    prompt = prompt_services.prompt_create(project=project, name="ask", actor=user)
    prompt_version = prompt_services.prompt_version_create(
        prompt=prompt, content=build_content(kind="text", template="{{ question }}"), parent_number=None,
        message="", actor=user,
    )  # fmt: skip
    endpoint = endpoint_create(project=project, actor=user, name="sim", kind=EndpointKind.SIMULATED,
                               model="openai/echo", api_base="http://127.0.0.1:9/v1")  # fmt: skip
    experiments = []
    for name in ("before", "after"):
        experiment = services.experiment_create(
            project=project, name=name, dataset_version=version,
            variants=[services.VariantSpec("A", prompt_version, endpoint)],
            evaluator_specs=[services.EvaluatorSpec("exact", "exact_match", {})], repeats=1, budget=None, actor=user,
        )  # fmt: skip
        Cell.objects.bulk_create(
            [Cell(experiment=experiment, variant=experiment.variants.get(), item_id=row.item_id, position=row.position,
                  status=CellStatus.DONE, output=_sentence(rng)) for row in version.rows.all()],
            batch_size=2000,
        )  # fmt: skip
        evaluator = EvaluatorConfig.objects.get(experiment=experiment)
        Score.objects.bulk_create(
            [Score(cell_id=cell_id, evaluator=evaluator, value=rng.random(), passed=rng.random() > 0.5)
             for cell_id in Cell.objects.filter(experiment=experiment).values_list("pk", flat=True)],
            batch_size=2000,
        )  # fmt: skip
        Experiment.objects.filter(pk=experiment.pk).update(status=ExperimentStatus.FINISHED)
        experiments.append(Experiment.objects.select_related("dataset_version").get(pk=experiment.pk))

    def plain_read() -> None:
        ids = [e.pk for e in experiments]
        list(Cell.objects.filter(experiment__in=ids).values_list("item_id", "variant_id", "status", "output"))
        list(Score.objects.filter(cell__experiment__in=ids).values_list("cell_id", "value", "passed"))

    def compare() -> None:
        result = comparison.experiment_comparison(experiments=experiments)
        assert result.item_count == ROWS and len(result.rows) == 50

    timings = {}
    for name, function in (("read", plain_read), ("compare", compare)):
        function()  # warm the caches once
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            function()
            best = min(best, time.perf_counter() - started)
        timings[name] = best
    print(f"rows: {ROWS} x 2 experiments")
    print(f"read_cells_ms: {timings['read'] * 1000:.1f}")
    print(f"compare_ms: {timings['compare'] * 1000:.1f}")
    print(f"compare_vs_read_cells: {timings['compare'] / timings['read']:.2f}")


if __name__ == "__main__":
    main()
