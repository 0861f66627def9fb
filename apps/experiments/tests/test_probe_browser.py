"""In a browser: dataset → counterfactual version → bias probe → blocked release → fairer version → release."""

import pytest

from apps.datasets.models import DatasetVersion
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments import runner
from apps.experiments.models import Cell, Experiment
from apps.experiments.probes import governance
from apps.experiments.tests.test_bias_probe import loan_rows
from apps.prompts.models import Label
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.reviews.tests.factories import ReleasePolicyFactory, approved

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _run_newest_probe():
    experiment = Experiment.objects.order_by("-pk").first()
    runner.run_batch(experiment.pk, list(Cell.objects.filter(experiment=experiment).values_list("pk", flat=True)))
    return experiment


def test_a_probe_blocks_then_allows_a_release_in_a_browser(page, login_page, project, member, simulated_endpoint):
    author, reviewer, admin = member("editor", "alice"), member("reviewer", "rita"), member("admin", "adam")
    policy = ReleasePolicyFactory(project=project)
    governance.probe_requirement_set(policy=policy, kind="bias", attribute="gender", max_rate=0.02, actor=admin)
    simulated_endpoint("loan model", "openai/biased")
    dataset = DatasetFactory(project=project, name="loans")
    make_dataset_version(dataset, loan_rows(12), actor=author)
    prompt = PromptFactory(project=project, name="loan-decision")
    biased = make_version(prompt, "Decide APPROVED or DENIED.\n{{ application }}", actor=author,
                          samples={"application": "x"})  # fmt: skip
    login_page(author)

    # The counterfactual version, from the dataset's page.
    page.goto(f"/p/acme/datasets/{dataset.pk}/v/1/")
    page.click("#variants-tab")
    page.select_option("#cf-swap", "gender|female|male")
    page.locator("#counterfactual-form").get_by_label("application").check()
    page.click("#counterfactual-button")
    page.locator("#version-meta", has_text="Counterfactuals of v1").wait_for()
    assert DatasetVersion.objects.get(dataset=dataset, number=2).row_count == 24

    # The bias probe of v1, from the experiments page.
    page.goto("/p/acme/experiments/")
    page.click("#probes-link")
    page.select_option("#bias-prompt", label="loan-decision v1")
    page.fill("#bias-positive", "APPROVED")
    page.click("#bias-button")
    page.wait_for_load_state()
    _run_newest_probe()
    page.reload()
    assert "bias found" in page.locator("#probe-report").inner_text()

    # The release of v1 is blocked by the policy's probe requirement.
    review = approved(biased, requester=author, approver=reviewer)
    page.goto(f"/p/acme/reviews/{review.pk}/")
    checks = page.locator("#release-checks").inner_text()
    assert "not met: probe: label flip rate <= 2% for gender" in checks and "100.0%" in checks
    assert "Release is blocked" in page.locator("#blocking").inner_text()
    assert "Responsible-AI probes" in page.locator("#evidence").inner_text()

    # v2 decides on the length of the application, not on who wrote it: the probe passes, the release goes.
    fair = make_version(prompt, "Decide APPROVED or DENIED for an application of {{ application|length }} characters.",
                        actor=author, samples={"application": "x"})  # fmt: skip
    page.goto("/p/acme/experiments/probes/")
    page.select_option("#bias-prompt", label="loan-decision v2")
    page.fill("#bias-positive", "APPROVED")
    page.click("#bias-button")
    page.wait_for_load_state()
    _run_newest_probe()
    review = approved(fair, requester=author, approver=reviewer)
    page.goto(f"/p/acme/reviews/{review.pk}/")
    assert "met: probe: label flip rate <= 2% for gender" in page.locator("#release-checks").inner_text()
    page.get_by_role("button", name="Release v2 to production").click()
    page.wait_for_load_state()
    assert Label.objects.get(prompt=prompt, name="production").version_id == fair.pk
