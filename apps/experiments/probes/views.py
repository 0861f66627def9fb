"""The probe sections of the experiment page (bias, injection) and the form that starts a bias probe."""

from __future__ import annotations

from typing import Any

from apps.experiments.models import Experiment, ExperimentKind


def probe_context(experiment: Experiment) -> dict[str, Any]:
    if experiment.kind == ExperimentKind.BIAS:
        from apps.experiments.probes import bias

        reports = bias.report(experiment)
        return {
            "probe_kind": "bias",
            "probe_reports": [r.as_dict() for r in reports],
            "probe_summary": bias.summary(reports),
            "probe_charts": bias.charts(reports),
            "probe_alpha": bias.ALPHA,
        }
    if experiment.kind == ExperimentKind.INJECTION:
        from apps.experiments.probes import injection

        result = injection.report(experiment)
        return {"probe_kind": "injection", "probe_report": result.as_dict(), "probe_summary": injection.summary(result)}
    return {}
