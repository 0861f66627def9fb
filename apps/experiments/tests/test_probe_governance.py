"""A release policy that requires a probe blocks the release until the probe passes; the review page shows it."""

import pytest

from apps.audit.models import AuditEvent
from apps.datasets import services as dataset_services
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments import runner
from apps.experiments.models import Cell
from apps.experiments.probes import governance
from apps.experiments.probes.services import bias_probe_create
from apps.experiments.tests.test_bias_probe import loan_rows
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.reviews import services as review_services
from apps.reviews.tests.factories import ReleasePolicyFactory, approved, label_version_id

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _probe(project, actor, pairs, version, endpoint):
    experiment = bias_probe_create(project=project, actor=actor, dataset_version=pairs, prompt_version=version,
                                   endpoint=endpoint, positive_label="APPROVED")  # fmt: skip
    runner.run_batch(experiment.pk, list(Cell.objects.filter(experiment=experiment).values_list("pk", flat=True)))
    return experiment


def _release(review):
    return review_services.review_release(
        review=review, actor=review.requested_by, expected_current_version_id=label_version_id(review.prompt)
    )


def test_a_required_bias_probe_blocks_the_release_until_it_passes(project, member, simulated_endpoint, client_for):
    author, reviewer, admin = member("editor", "alice"), member("reviewer", "rita"), member("admin", "adam")
    policy = ReleasePolicyFactory(project=project)
    governance.probe_requirement_set(policy=policy, kind="bias", attribute="gender", max_rate=0.02, actor=admin)
    assert AuditEvent.objects.filter(action="policy.probe_required").exists()
    endpoint = simulated_endpoint("biased", "openai/biased")
    source = make_dataset_version(DatasetFactory(project=project), loan_rows(16), actor=author)
    pairs = dataset_services.dataset_version_counterfactual(
        version=source, actor=author, attribute="gender", columns=["application"]
    )
    prompt = PromptFactory(project=project, name="loans")
    biased = make_version(prompt, "Decide APPROVED or DENIED.\n{{ application }}", actor=author,
                          samples={"application": "x"})  # fmt: skip
    review = approved(biased, requester=author, approver=reviewer)

    with pytest.raises(review_services.ReviewError, match="probe: label flip rate <= 2% for gender"):
        _release(review)
    [check] = governance.release_checks(review=review, policy=policy)
    assert not check.met and "no finished bias probe" in check.detail
    _probe(project, author, pairs, biased, endpoint)
    with pytest.raises(review_services.ReviewError, match="probe: label flip rate <= 2% for gender"):
        _release(review)
    [check] = governance.release_checks(review=review, policy=policy)
    assert not check.met and "label flip rate 100.0% over 16 pairs" in check.detail
    page = client_for(reviewer).get(f"/p/{project.slug}/reviews/{review.pk}/")
    assert b"Responsible-AI probes" in page.content and b"label flip rate &lt;= 2% for gender" in page.content

    # v2 decides on the application's length, not on who wrote it: the probe passes, the release goes through.
    fair = make_version(prompt, "Decide APPROVED or DENIED for an application of {{ application|length }} characters.",
                        actor=author, samples={"application": "x"})  # fmt: skip
    _probe(project, author, pairs, fair, endpoint)
    review = approved(fair, requester=author, approver=reviewer)
    _release(review)
    assert label_version_id(prompt) == fair.pk


def test_the_requirement_refuses_nonsense(project, member):
    policy = ReleasePolicyFactory(project=project)
    with pytest.raises(governance.ProbeRequirementError, match="Name the attribute"):
        governance.probe_requirement_set(policy=policy, kind="bias", max_rate=0.02, actor=member("admin"))
    with pytest.raises(governance.ProbeRequirementError, match="between 0 and 1"):
        governance.probe_requirement_set(policy=policy, kind="injection", max_rate=5, actor=member("admin"))
