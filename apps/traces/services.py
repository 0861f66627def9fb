"""Writes of the traces app other than ingest (apps/traces/ingest.py): production generations into datasets."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.datasets import selectors as dataset_selectors
from apps.datasets import services as dataset_services
from apps.datasets.models import Dataset, DatasetVersion, VersionSource
from apps.traces.models import PiiMode, Span, SpanKind, TraceSettings


class TraceError(Exception):
    pass


def generation_row(span: Span) -> dict[str, Any]:
    """A generation as a dataset row: its variables as input (else its input text), its output as expected."""
    variables = span.variables if isinstance(span.variables, dict) and span.variables else None
    return {
        "input": dict(variables) if variables else {"input": span.input_text},
        "expected": span.output_text or None,
        "metadata": {
            "source": "production",
            "trace_id": span.trace_id,
            "span_id": span.span_id,
            "prompt": span.prompt_name or None,
            "prompt_version": span.prompt_version_number,
            "model": span.model or None,
            "start_time": span.start_time.isoformat(),
        },
    }


def generations_to_dataset(
    *, project_id: int, span_ids: list[int], dataset: Dataset, actor: Any, message: str = ""
) -> DatasetVersion:
    """Append the chosen generations to the dataset as one new version (production cases become test cases)."""
    if dataset.project_id != project_id:
        raise TraceError("That dataset belongs to another project.")
    spans = list(
        Span.objects.filter(project_id=project_id, pk__in=span_ids, kind=SpanKind.GENERATION).order_by("start_time")
    )
    if not spans:
        raise TraceError("Select at least one generation of this project.")
    records = [generation_row(span) for span in spans]
    traces = sorted({span.trace_id[:12] for span in spans})
    message = (message or "").strip() or (
        f"Added {len(records)} production generation(s) from trace(s) {', '.join(traces[:3])}"
        + ("…" if len(traces) > 3 else "")
    )
    for attempt in range(3):
        newest = dataset_selectors.version_newest(dataset=dataset)
        try:
            if newest is None:
                return dataset_services.dataset_version_create_from_records(
                    dataset=dataset, records=records, message=message, actor=actor, source=VersionSource.EDIT
                )
            return dataset_services.dataset_version_edit(version=newest, actor=actor, message=message, append=records)
        except dataset_services.StaleVersion:
            if attempt == 2:
                raise
        except dataset_services.DatasetError as exc:
            raise TraceError(str(exc)) from None
    raise AssertionError("unreachable")


@transaction.atomic
def trace_settings_update(*, project, retention_days: int, pii_mode: str, actor: Any) -> TraceSettings:
    """Set a project's retention and personal-data handling of traces; an audit event records the change."""
    from apps.audit.services import audit_record

    if pii_mode not in PiiMode.values:
        raise TraceError(f"Unknown personal-data mode '{pii_mode}'; use off, mask or drop.")
    if not 1 <= retention_days <= 3650:
        raise TraceError("Keep traces from 1 to 3650 days.")
    current, _ = TraceSettings.objects.get_or_create(project=project)
    before = {"retention_days": current.retention_days, "pii_mode": current.pii_mode}
    current.retention_days, current.pii_mode = retention_days, pii_mode
    current.save(update_fields=["retention_days", "pii_mode", "updated_at"])
    audit_record(project_id=project.pk, actor=actor, action="traces.settings_changed", obj=current, before=before,
                 after={"retention_days": retention_days, "pii_mode": pii_mode})  # fmt: skip
    return current
