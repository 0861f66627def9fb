"""Probes as release evidence: a policy's probe requirements, checked against the newest finished probe.

`release_checks` is registered with apps.reviews.release_checks (a requirement not met blocks the
release), `collect` with apps.reviews.evidence (the review page shows each probe's result beside the
experiment evidence). The probe counted is the newest finished experiment of that kind in the project
that ran the review's exact prompt version.
"""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse

from apps.audit.services import audit_record
from apps.experiments.models import Experiment, ExperimentKind, ExperimentStatus, ProbeRequirement
from apps.reviews.evidence import EvidenceItem
from apps.reviews.release_checks import CheckResult


class ProbeRequirementError(Exception):
    pass


@transaction.atomic
def probe_requirement_set(*, policy, kind: str, max_rate: float, attribute: str = "", actor) -> ProbeRequirement:
    if kind not in (ExperimentKind.BIAS, ExperimentKind.INJECTION):
        raise ProbeRequirementError("A probe requirement is for a bias or an injection probe.")
    if not 0 <= max_rate <= 1:
        raise ProbeRequirementError("The highest rate is a share between 0 and 1 (0.02 for 2%).")
    attribute = attribute.strip() if kind == ExperimentKind.BIAS else ""
    if kind == ExperimentKind.BIAS and not attribute:
        raise ProbeRequirementError("Name the attribute the bias probe must pass (e.g. gender).")
    requirement, _ = ProbeRequirement.objects.update_or_create(
        policy=policy, kind=kind, attribute=attribute, defaults={"max_rate": max_rate}
    )
    audit_record(
        project_id=policy.project_id,
        actor=actor,
        action="policy.probe_required",
        obj=policy,
        after={"label": policy.label_name, "requirement": str(requirement)},
    )
    return requirement


def _newest_probe(review, kind: str) -> Experiment | None:
    return (
        Experiment.objects.filter(
            project_id=review.project_id,
            kind=kind,
            status=ExperimentStatus.FINISHED,
            variants__prompt_version_id=review.version_id,
        )
        .order_by("-finished_at", "-pk")
        .first()
    )


def measure(requirement: ProbeRequirement, review) -> tuple[bool, str, Experiment | None]:
    experiment = _newest_probe(review, requirement.kind)
    if experiment is None:
        return False, f"no finished {requirement.get_kind_display().lower()} probe of this version", None
    if requirement.kind == ExperimentKind.BIAS:
        from apps.experiments.probes import bias

        reports = [r for r in bias.report(experiment) if r.attribute == requirement.attribute]
        if not reports:
            return False, f"{experiment.name} has no {requirement.attribute} pairs", experiment
        worst = max(reports, key=lambda r: r.flip_rate)
        detail = (
            f"{experiment.name}: label flip rate {worst.flip_rate:.1%} over {worst.pairs} pairs "
            f"({worst.values[0]} vs {worst.values[1]})"
        )
        return worst.flip_rate <= requirement.max_rate, detail, experiment
    from apps.experiments.probes import injection

    result = injection.report(experiment)
    if not result.attacks:
        return False, f"{experiment.name} answered no attack", experiment
    detail = f"{experiment.name}: attack success {result.success_rate:.1%} over {result.attacks} attacks"
    return result.success_rate <= requirement.max_rate, detail, experiment


def _requirements(policy) -> list[ProbeRequirement]:
    if policy is None or not policy.protected:
        return []
    return list(ProbeRequirement.objects.filter(policy=policy).order_by("kind", "attribute"))


def release_checks(*, review, policy) -> list[CheckResult]:
    results = []
    for requirement in _requirements(policy):
        met, detail, _ = measure(requirement, review)
        results.append(CheckResult(title=f"probe: {requirement}", met=met, blocking=True, detail=detail))
    return results


def collect(*, version, review) -> list[EvidenceItem]:
    from apps.reviews.models import ReleasePolicy

    if review is None:
        return []
    policy = ReleasePolicy.objects.filter(project_id=review.project_id, label_name=review.label_name).first()
    items = []
    for requirement in _requirements(policy):
        met, detail, experiment = measure(requirement, review)
        url = reverse("experiments:detail", args=[review.project.slug, experiment.pk]) if experiment else ""
        items.append(EvidenceItem(title=f"Probe: {requirement}", summary=detail, url=url, passed=met))
    return items
