"""Occlusion on one output: the variable the answer depends on moves it, the other does not."""

import pytest

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments import runner, services
from apps.experiments.models import Cell
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_result_page_explains_an_output_by_occlusion(project, editor, simulated_endpoint, client_for):
    # `biased` answers DENIED when a woman is mentioned: the applicant moves the decision, the amount does not.
    version = make_version(PromptFactory(project=project), "Decide. Applicant: {{ applicant }}. Amount: {{ amount }}.",
                           actor=editor, samples={"applicant": "x", "amount": 1})  # fmt: skip
    data = make_dataset_version(DatasetFactory(project=project),
                                [{"input": {"applicant": "she is a nurse", "amount": 5000}}], actor=editor)  # fmt: skip
    experiment = services.experiment_create(
        project=project, name="loans", dataset_version=data, actor=editor,
        variants=[services.VariantSpec("A", version, simulated_endpoint("biased", "openai/biased"))],
    )  # fmt: skip
    services.experiment_start(experiment=experiment, actor=editor)
    runner.run_batch(experiment.pk, list(Cell.objects.filter(experiment=experiment).values_list("pk", flat=True)))
    cell = Cell.objects.get(experiment=experiment)
    assert cell.output == "DENIED"
    client = client_for(editor)
    url = f"/p/{project.slug}/experiments/{experiment.pk}/cells/{cell.pk}/explain/"
    assert url.encode() in client.get(f"/p/{project.slug}/experiments/{experiment.pk}/").content
    page = client.post(url)
    assert page.status_code == 200
    from apps.experiments.probes.explain import occlusion

    baseline, first, second = occlusion(cell)
    assert (baseline.variable, baseline.distance, baseline.decision_changed) == ("", 0.0, False)
    assert (first.variable, first.output, first.decision_changed) == ("applicant", "APPROVED", True)
    assert (second.variable, second.decision_changed, second.distance) == ("amount", False, 0.0)
    assert b'id="occlusion"' in page.content and b"moves it" in page.content
