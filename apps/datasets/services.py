"""Writes of datasets: datasets and versions (from records, from edits, redacted); imports are in import_jobs.py.

Each write runs in one transaction with its audit event. Versions never change;
a new version shares every unchanged item with its parent, and its row list is
copied inside the database (INSERT ... SELECT), not through Python objects.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.audit.services import actor_repr, actor_user, audit_record
from apps.datasets.models import (
    Dataset,
    DatasetItem,
    DatasetVersion,
    DatasetVersionItem,
    VersionSource,
)

logger = logging.getLogger(__name__)

BATCH = 5000
SQL_EDIT_LIMIT = 500  # above this many changed rows, a new row list is built in Python instead of by SQL
Progress = Callable[[int, int], None]


class DatasetError(Exception):
    """A refused write; the message is shown to the user as is."""


class StaleVersion(DatasetError):
    pass


# --- datasets -------------------------------------------------------------------------------------


def check_dataset_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise DatasetError("Give the dataset a name.")
    if len(name) > 100:
        raise DatasetError("A dataset name has at most 100 characters.")
    return name


@transaction.atomic
def dataset_create(*, project: Project, name: str, actor, description: str = "") -> Dataset:
    name = check_dataset_name(name)
    if Dataset.objects.filter(project=project, name=name).exists():
        raise DatasetError(f"A dataset called '{name}' already exists in this project.")
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                project=project, name=name, description=description, created_by=actor_user(actor)
            )
    except IntegrityError:
        raise DatasetError(f"A dataset called '{name}' already exists in this project.") from None
    audit_record(project_id=project.pk, actor=actor, action="dataset.created", obj=dataset, after={"name": name})
    return dataset


@transaction.atomic
def dataset_update(*, dataset: Dataset, actor, description: str) -> Dataset:
    before = {"description": dataset.description}
    dataset.description = description
    dataset.save(update_fields=["description", "updated_at"])
    if before["description"] != description:
        audit_record(
            project_id=dataset.project_id,
            actor=actor,
            action="dataset.updated",
            obj=dataset,
            before=before,
            after={"description": description},
        )
    return dataset


# --- records and items ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedItem:
    content_hash: str
    input_json: str
    expected_json: str | None
    metadata_json: str


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalize_record(record: Any, *, row: int) -> dict[str, Any]:
    """Check one {input, expected, metadata} record (from an import, an edit or the API)."""
    if not isinstance(record, dict):
        raise DatasetError(f"Row {row}: a row must be an object with 'input', 'expected' and 'metadata'.")
    unknown = sorted(set(record) - {"input", "expected", "metadata"})
    if unknown:
        raise DatasetError(f"Row {row}: unknown keys {', '.join(unknown)}; use input, expected and metadata.")
    inputs = record.get("input")
    if not isinstance(inputs, dict):
        raise DatasetError(f"Row {row}: 'input' must be a JSON object of variable name to value.")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DatasetError(f"Row {row}: 'metadata' must be a JSON object.")
    return {"input": inputs, "expected": record.get("expected"), "metadata": metadata}


def prepare_item(record: dict[str, Any], *, row: int = 0) -> PreparedItem:
    input_json = _dumps(record["input"])
    expected = record.get("expected")
    expected_json = None if expected is None else _dumps(expected)
    metadata_json = _dumps(record.get("metadata") or {})
    if "u0000" in input_json or "u0000" in (expected_json or "") or "u0000" in metadata_json:
        _refuse_nul(record, row=row)
    limit = settings.DATASET_MAX_CELL_CHARS
    if len(input_json) > limit or len(expected_json or "") > limit or len(metadata_json) > limit:
        _check_value_sizes(record, row=row, limit=limit)
    digest = hashlib.sha256(
        "\x1f".join((input_json, expected_json or "null", metadata_json)).encode("utf-8")
    ).hexdigest()[:32]
    return PreparedItem(digest, input_json, expected_json, metadata_json)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _refuse_nul(record: dict[str, Any], *, row: int) -> None:
    """PostgreSQL cannot store a NUL character in text or JSON: name the row instead of failing later."""
    for what, value in (("input", record["input"]), ("expected output", record.get("expected")),
                        ("metadata", record.get("metadata"))):  # fmt: skip
        if _has_nul(value):
            raise DatasetError(f"Row {row}, {what}: contains a NUL character (\\u0000), which cannot be stored.")


def _check_value_sizes(record: dict[str, Any], *, row: int, limit: int) -> None:
    values = [(f"input '{k}'", v) for k, v in record["input"].items()]
    values += [("expected output", record.get("expected"))]
    values += [(f"metadata '{k}'", v) for k, v in (record.get("metadata") or {}).items()]
    for what, value in values:
        size = len(value) if isinstance(value, str) else len(_dumps(value))
        if size > limit:
            raise DatasetError(
                f"Row {row}, {what}: a value of {size:,} characters is over the limit of {limit:,} "
                "(DATASET_MAX_CELL_CHARS)."
            )


def _existing_item_ids(dataset_id: int, hashes: set[str]) -> dict[str, int]:
    if not hashes:
        return {}
    items = DatasetItem.objects.filter(dataset_id=dataset_id)
    if len(hashes) > BATCH:
        return {h: i for h, i in items.values_list("content_hash", "id").iterator(chunk_size=BATCH) if h in hashes}
    found: dict[str, int] = {}
    ordered = list(hashes)
    for start in range(0, len(ordered), 900):
        found.update(items.filter(content_hash__in=ordered[start : start + 900]).values_list("content_hash", "id"))
    return found


def _json_param() -> str:
    return "%s::jsonb" if connection.vendor == "postgresql" else "%s"


def _store_items(dataset_id: int, prepared: list[PreparedItem], progress: Progress | None = None) -> dict[str, int]:
    """Insert the items the dataset does not have yet; return hash -> id for all of `prepared`."""
    wanted = {p.content_hash for p in prepared}
    ids = _existing_item_ids(dataset_id, wanted)
    new: dict[str, PreparedItem] = {}
    for item in prepared:
        if item.content_hash not in ids:
            new.setdefault(item.content_hash, item)
    table = connection.ops.quote_name(DatasetItem._meta.db_table)
    param = _json_param()
    # Table and column names come from the model; every value is a parameter.
    columns = "(dataset_id, content_hash, input, expected, metadata)"
    sql = f"INSERT INTO {table} {columns} VALUES (%s, %s, {param}, {param}, {param})"  # noqa: S608
    rows = [(dataset_id, p.content_hash, p.input_json, p.expected_json, p.metadata_json) for p in new.values()]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH):
            cursor.executemany(sql, rows[start : start + BATCH])
            if progress:
                progress(start + len(rows[start : start + BATCH]), len(rows))
    if new:
        ids.update(_existing_item_ids(dataset_id, set(new)))
    return ids


def _insert_rows(rows: list[tuple[int, int, int]]) -> None:
    table = connection.ops.quote_name(DatasetVersionItem._meta.db_table)
    sql = f"INSERT INTO {table} (version_id, item_id, position) VALUES (%s, %s, %s)"  # noqa: S608
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH * 4):
            cursor.executemany(sql, rows[start : start + BATCH * 4])


def _columns_of(records: Iterable[dict[str, Any]], start: tuple[list[str], list[str], bool] | None = None):
    inputs: dict[str, None] = dict.fromkeys(start[0]) if start else {}
    metadata: dict[str, None] = dict.fromkeys(start[1]) if start else {}
    has_expected = start[2] if start else False
    for record in records:
        for key in record["input"]:
            if key not in inputs:
                inputs[key] = None
        for key in record["metadata"]:
            if key not in metadata:
                metadata[key] = None
        has_expected = has_expected or record["expected"] is not None
    return list(inputs), list(metadata), has_expected


def _new_version(
    *,
    dataset: Dataset,
    parent: DatasetVersion | None,
    message: str,
    source: str,
    actor,
    row_count: int,
    columns: tuple[list[str], list[str], bool],
    require_newest: bool = False,
) -> DatasetVersion:
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
    newest = DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()
    if require_newest and newest is not None and parent is not None and newest.pk != parent.pk:
        raise StaleVersion(
            f"You edited v{parent.number}, but v{newest.number} was saved since by {newest.author_repr}. "
            f"Open v{newest.number} and make your change there."
        )
    if row_count > settings.DATASET_MAX_ROWS:
        raise DatasetError(f"A version can hold at most {settings.DATASET_MAX_ROWS:,} rows (DATASET_MAX_ROWS).")
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=(newest.number if newest else 0) + 1,
        parent=parent,
        message=message[:500],
        source=source,
        row_count=row_count,
        input_columns=columns[0],
        metadata_columns=columns[1],
        has_expected=columns[2],
        author=actor_user(actor),
        author_repr=actor_repr(actor)[:200],
    )
    Dataset.objects.filter(pk=dataset.pk).update(updated_at=timezone.now())
    audit_record(
        project_id=dataset.project_id,
        actor=actor,
        action="dataset.version_created",
        obj=version,
        after={"number": version.number, "rows": row_count, "source": source, "message": version.message},
    )
    return version


@transaction.atomic
def dataset_version_create_from_records(
    *,
    dataset: Dataset,
    records: Iterable[dict[str, Any]],
    message: str,
    actor,
    source: str = VersionSource.IMPORT,
    progress: Progress | None = None,
) -> DatasetVersion:
    """Make a new version holding exactly `records` ({input, expected, metadata}), in order.

    Items the dataset already has (same content) are shared, not stored again.
    All or nothing: a bad record raises DatasetError and nothing is written.
    """
    normalized = [normalize_record(record, row=row) for row, record in enumerate(records, start=1)]
    if not normalized:
        raise DatasetError("A version needs at least one row.")
    if len(normalized) > settings.DATASET_MAX_ROWS:
        raise DatasetError(f"A version can hold at most {settings.DATASET_MAX_ROWS:,} rows (DATASET_MAX_ROWS).")
    prepared = [prepare_item(record, row=row) for row, record in enumerate(normalized, start=1)]
    parent = DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()
    version = _new_version(
        dataset=dataset,
        parent=parent,
        message=message,
        source=source,
        actor=actor,
        row_count=len(prepared),
        columns=_columns_of(normalized),
    )
    total = len(prepared)
    ids = _store_items(dataset.pk, prepared, (lambda done, _n: progress(done, total)) if progress else None)
    _insert_rows([(version.pk, ids[p.content_hash], position) for position, p in enumerate(prepared)])
    if progress:
        progress(total, total)
    return version


@transaction.atomic
def dataset_version_edit(
    *,
    version: DatasetVersion,
    actor,
    message: str,
    replace: dict[int, dict[str, Any]] | None = None,
    delete: Iterable[int] = (),
    append: Iterable[dict[str, Any]] = (),
    source: str = VersionSource.EDIT,
    require_newest: bool = True,
) -> DatasetVersion:
    """Make a new version from `version` with rows replaced, deleted (by 0-based position) and appended.

    Unchanged rows keep their items; the row list is copied in SQL. Editing a
    version that is no longer the newest raises StaleVersion.
    """
    replace = dict(replace or {})
    deleted = set(delete)
    appended = [normalize_record(r, row=version.row_count + i) for i, r in enumerate(append, start=1)]
    for position in [*replace, *deleted]:
        if not 0 <= position < version.row_count:
            raise DatasetError(f"Row {position + 1} does not exist in v{version.number}.")
    replace = {p: normalize_record(r, row=p + 1) for p, r in replace.items() if p not in deleted}
    if not replace and not deleted and not appended:
        raise DatasetError("Nothing changed; no version was saved.")
    row_count = version.row_count - len(deleted) + len(appended)
    if row_count <= 0:
        raise DatasetError("A version needs at least one row; you deleted all of them.")
    changed = [*replace.values(), *appended]
    columns = _columns_of(changed, (version.input_columns, version.metadata_columns, version.has_expected))
    new = _new_version(
        dataset=version.dataset,
        parent=version,
        message=message,
        source=source,
        actor=actor,
        row_count=row_count,
        columns=columns,
        require_newest=require_newest,
    )
    prepared_replace = {p: prepare_item(r, row=p + 1) for p, r in replace.items()}
    prepared_append = [prepare_item(r, row=version.row_count + i) for i, r in enumerate(appended, start=1)]
    ids = _store_items(version.dataset_id, [*prepared_replace.values(), *prepared_append])
    _copy_rows(version, new, {p: ids[i.content_hash] for p, i in prepared_replace.items()}, deleted)
    kept = version.row_count - len(deleted)
    _insert_rows([(new.pk, ids[p.content_hash], kept + i) for i, p in enumerate(prepared_append)])
    return new


def _copy_rows(base: DatasetVersion, new: DatasetVersion, replaced: dict[int, int], deleted: set[int]) -> None:
    """Copy base's rows to new, minus `deleted`, with `replaced` positions pointing at other items."""
    if len(replaced) + len(deleted) > SQL_EDIT_LIMIT:
        rows = []
        position = 0
        for old_position, item_id in (
            DatasetVersionItem.objects.filter(version=base).order_by("position").values_list("position", "item_id")
        ).iterator(chunk_size=BATCH * 4):
            if old_position in deleted:
                continue
            rows.append((new.pk, replaced.get(old_position, item_id), position))
            position += 1
        _insert_rows(rows)
        return
    table = connection.ops.quote_name(DatasetVersionItem._meta.db_table)
    where, params = "", [new.pk, base.pk]
    if deleted:
        where = f" AND position NOT IN ({', '.join(['%s'] * len(deleted))})"
        params.extend(sorted(deleted))
    renumber = "ROW_NUMBER() OVER (ORDER BY position) - 1" if deleted else "position"
    with connection.cursor() as cursor:
        select = f"SELECT %s, item_id, {renumber} FROM {table} WHERE version_id = %s{where}"  # noqa: S608
        cursor.execute(f"INSERT INTO {table} (version_id, item_id, position) {select}", params)
    ordered_deleted = sorted(deleted)
    for old_position, item_id in replaced.items():
        shift = _count_below(ordered_deleted, old_position)
        DatasetVersionItem.objects.filter(version=new, position=old_position - shift).update(item_id=item_id)


def _count_below(ordered: list[int], value: int) -> int:
    import bisect

    return bisect.bisect_left(ordered, value)


@transaction.atomic
def dataset_version_redact(*, version: DatasetVersion, actor, message: str = "") -> DatasetVersion:
    """A new version with every e-mail, phone, card number and IBAN replaced by a placeholder."""
    from apps.datasets import quality, selectors

    replace: dict[int, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for position, item in selectors.version_items_iter(version=version):
        record = item.as_record()
        redacted, found = quality.redact_record(record)
        if found:
            replace[position] = redacted
            for kind, number in found.items():
                counts[kind] = counts.get(kind, 0) + number
    if not replace:
        raise DatasetError(f"v{version.number} has no personal data to redact.")
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return dataset_version_edit(
        version=version,
        actor=actor,
        message=message or f"Redacted personal data from v{version.number} ({summary})",
        replace=replace,
        source=VersionSource.REDACTION,
        require_newest=False,
    )


# --- counterfactuals and perturbations ------------------------------------------------------------


def _text_columns(version: DatasetVersion, columns: list[str]) -> list[str]:
    columns = [c for c in dict.fromkeys(columns or []) if c]
    if not columns:
        raise DatasetError("Choose at least one input column to vary.")
    unknown = [c for c in columns if c not in version.input_columns]
    if unknown:
        raise DatasetError(
            f"v{version.number} has no input column '{unknown[0]}'; it has: {', '.join(version.input_columns)}."
        )
    return columns


def _paired(record: dict[str, Any], *, pair_id: str, attribute: str, value: str, role: str, position: int) -> dict:
    metadata = {
        **(record.get("metadata") or {}),
        "pair_id": pair_id,
        "attribute": attribute,
        "attribute_value": value,
        "pair_role": role,
        "source_row": position + 1,
    }
    return {"input": record["input"], "expected": record.get("expected"), "metadata": metadata}


@transaction.atomic
def dataset_version_counterfactual(
    *,
    version: DatasetVersion,
    actor,
    attribute: str,
    columns: list[str],
    values: tuple[str, str] | None = None,
    message: str = "",
) -> DatasetVersion:
    """A new version of originals and their counterfactuals, two rows per pair, swapped along `attribute`.

    Each row's metadata carries pair_id, attribute, attribute_value and pair_role (original or
    counterfactual). A row without a term of either value has nothing to swap and is left out.
    """
    from apps.datasets import counterfactual, selectors

    columns = _text_columns(version, columns)
    try:
        lexicon = counterfactual.lexicon_get(attribute, version.dataset.project.slug)
    except counterfactual.LexiconError as exc:
        raise DatasetError(str(exc)) from exc
    a, b = values or (lexicon.values[0], lexicon.values[1])
    for value in (a, b):
        if value not in lexicon.values:
            raise DatasetError(f"'{value}' is not a value of {attribute}; use {', '.join(lexicon.values)}.")
    if a == b:
        raise DatasetError("Choose two different values to swap between.")
    records: list[dict[str, Any]] = []
    for position, item in selectors.version_items_iter(version=version):
        record = item.as_record()
        swapped_input = dict(record["input"])
        found = {a: 0, b: 0}
        for column in columns:
            swap = counterfactual.swap_text(record["input"].get(column), lexicon, a, b)
            swapped_input[column] = swap.text
            found = {k: found[k] + swap.counts[k] for k in found}
        if swapped_input == record["input"]:
            continue
        original_value = a if found[a] >= found[b] else b
        other = b if original_value == a else a
        pair_id = f"{attribute}-{position + 1}"
        common = {"pair_id": pair_id, "attribute": attribute, "position": position}
        records.append(_paired(record, value=original_value, role="original", **common))
        records.append(_paired({**record, "input": swapped_input}, value=other, role="counterfactual", **common))
    if not records:
        raise DatasetError(
            f"No row of v{version.number} mentions a {attribute} term ({a} or {b}) in {', '.join(columns)}; "
            "nothing to swap."
        )
    return dataset_version_create_from_records(
        dataset=version.dataset,
        records=records,
        actor=actor,
        source=VersionSource.COUNTERFACTUAL,
        message=message
        or f"Counterfactuals of v{version.number}: {attribute} {a} ↔ {b} in {', '.join(columns)} "
        f"({len(records) // 2} pairs)",
    )


@transaction.atomic
def dataset_version_perturb(
    *,
    version: DatasetVersion,
    actor,
    kinds: list[str],
    columns: list[str],
    seed: int = 0,
    rate: float = 0.05,
    paraphrase=None,
    message: str = "",
) -> DatasetVersion:
    """A new version of originals and perturbed copies (typos, casing, whitespace, reorder, paraphrase).

    Seeded, so the same call gives the same version. `paraphrase` (text -> text) is needed for
    the paraphrase kind; it calls a model. Each original/perturbed pair shares a pair_id.
    """
    import random

    from apps.datasets import counterfactual, selectors

    columns = _text_columns(version, columns)
    kinds = list(dict.fromkeys(kinds or []))
    if not kinds:
        raise DatasetError("Choose at least one perturbation.")
    unknown = [k for k in kinds if k not in counterfactual.PERTURBATIONS]
    if unknown:
        raise DatasetError(f"Unknown perturbation '{unknown[0]}'; use {', '.join(counterfactual.PERTURBATIONS)}.")
    if "paraphrase" in kinds and paraphrase is None:
        raise DatasetError("Paraphrase needs a model endpoint.")
    if not 0 < rate <= 0.5:
        raise DatasetError("The typo rate is a share of letters between 0 and 0.5.")
    records: list[dict[str, Any]] = []
    for kind in kinds:
        rng = random.Random(f"{seed}-{kind}")
        for position, item in selectors.version_items_iter(version=version):
            record = item.as_record()
            changed = dict(record["input"])
            for column in columns:
                value = record["input"].get(column)
                if not isinstance(value, str) or not value.strip():
                    continue
                changed[column] = (
                    paraphrase(value)
                    if kind == "paraphrase"
                    else counterfactual.perturb_text(value, kind, rng, rate=rate)
                )
            if changed == record["input"]:
                continue
            common = {"pair_id": f"{kind}-{position + 1}", "attribute": "perturbation", "position": position}
            records.append(_paired(record, value="none", role="original", **common))
            records.append(_paired({**record, "input": changed}, value=kind, role="counterfactual", **common))
    if not records:
        raise DatasetError(f"No row of v{version.number} changed under {', '.join(kinds)}; nothing to save.")
    return dataset_version_create_from_records(
        dataset=version.dataset,
        records=records,
        actor=actor,
        source=VersionSource.PERTURBATION,
        message=message
        or f"Perturbations of v{version.number}: {', '.join(kinds)} in {', '.join(columns)} (seed {seed})",
    )
