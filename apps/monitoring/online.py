"""Online evaluation: a share of a prompt's live generations scored by the experiments' evaluators.

Sampling. The ingest task tells `on_written` (a traces write listener, inside
the batch's transaction) which generations a write added. For each active rule
of the project whose prompt, label and version match, a generation is sampled
when a hash of (rule, trace id, span id) falls under the rule's rate, so a
retried batch samples the same generations; each sampled one gets an
OnlineEvaluation row (unique per rule and generation) and, once the batch
commits, a message to the `experiments` queue (model calls live there).

Evaluating. `evaluations_run` (the Celery task's body) claims its pending rows
in one UPDATE, then for each one reserves from the rule's budget of the day
(OnlineEvalBudget) in one conditional UPDATE: one more evaluation and the most
its model calls can cost (the judge's input tokens with a margin plus its
`max_tokens`, at the endpoint's price) are added only if the row stays within
both limits. Two workers racing for the last unit of budget cannot both get
it: the database re-checks the condition on the row it updates. A generation
that finds the budget spent is marked skipped. The evaluators are the
experiments' own (`apps.experiments.evaluators`): the pure ones run inline,
the judge and similarity call the gateway from a small thread pool (the
gateway holds the endpoint's shared slots and retries). When a call ends the
reservation is settled to its real cost, and the scores are written as traces
Score rows (source `online`, named `<rule>.<evaluator>`) through the ingest
writer, so the score rollups, the trace page and alert rules see them like
feedback. An evaluator that fails is stored as an `error` score and the
evaluation is marked errored; nothing is left pending: a row whose worker died
is taken again by the sweep once its claim expires.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.audit.services import actor_user, audit_record
from apps.experiments import evaluators
from apps.monitoring.models import (
    OnlineEvalBudget,
    OnlineEvalRule,
    OnlineEvalStatus,
    OnlineEvaluation,
)
from apps.monitoring.rollups import COST_UNIT, cost_units
from apps.traces.hooks import Written
from apps.traces.ingest import PROGRAM_SCORE_SOURCE

logger = logging.getLogger(__name__)

SOURCE = PROGRAM_SCORE_SOURCE  # online evaluation scores: on the trace, not in its feedback mean
ONLINE_KINDS = ("contains", "not_contains", "regex", "valid_json", "json_schema", "length", "similarity", "llm_judge")
MODEL_KINDS = ("similarity", "llm_judge")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
JUDGE_MAX_TOKENS = 200
JUDGE_PARAMS = {"temperature": 0, "max_tokens": JUDGE_MAX_TOKENS}
WRITE_BATCH = 25  # finished evaluations written per transaction
MAX_ATTEMPTS = 3  # claims of one evaluation by workers that died before finishing it


class OnlineEvalError(Exception):
    """A refused rule write; the message names the problem and is shown as is."""


# --- rules -------------------------------------------------------------------------------------------


def _rule_state(rule: OnlineEvalRule) -> dict[str, Any]:
    return {"name": rule.name, "prompt": rule.prompt_id, "label": rule.label, "version": rule.version_number,
            "sample_rate": rule.sample_rate, "evaluators": rule.evaluators,
            "daily_max_evaluations": rule.daily_max_evaluations,
            "daily_max_cost": str(rule.daily_max_cost) if rule.daily_max_cost is not None else None,
            "human_score_name": rule.human_score_name, "human_pass_at": rule.human_pass_at,
            "active": rule.active}  # fmt: skip


def _endpoint_priced(endpoint) -> bool:
    from apps.providers import gateway

    return gateway.estimate_cost(gateway.Target.from_endpoint(endpoint, with_key=False), 1000, 1000) is not None


def _check(rule: OnlineEvalRule) -> None:
    """Refuse a rule that could not run or could spend without a limit; the message says what to change."""
    from apps.prompts.models import PromptVersion
    from apps.providers.models import ModelEndpoint

    if not NAME.match(rule.name or ""):
        raise OnlineEvalError("Name the rule with 1 to 40 letters, digits, - or _ (it prefixes its score names).")
    if rule.prompt.project_id != rule.project_id:
        raise OnlineEvalError("That prompt belongs to another project.")
    if not 0 < rule.sample_rate <= 1:
        raise OnlineEvalError("The sample rate is a share above 0 and at most 1 (0.1 is 10%).")
    if (
        rule.version_number is not None
        and not PromptVersion.objects.filter(prompt=rule.prompt, number=rule.version_number).exists()
    ):
        raise OnlineEvalError(f"{rule.prompt.name} has no version {rule.version_number}.")
    if rule.daily_max_evaluations is None and rule.daily_max_cost is None:
        raise OnlineEvalError("Set a daily budget: a number of evaluations, a cost, or both.")
    if rule.daily_max_cost is not None and rule.daily_max_cost < 0:
        raise OnlineEvalError("The daily cost budget cannot be negative.")
    specs = rule.evaluators
    if not isinstance(specs, list) or not specs:
        raise OnlineEvalError("Add at least one evaluator.")
    if len(specs) > 10:
        raise OnlineEvalError("A rule runs at most 10 evaluators.")
    names = set()
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("params", {}), dict):
            raise OnlineEvalError('Each evaluator is {"name": ..., "kind": ..., "params": {...}}.')
        name, kind = spec.get("name"), spec.get("kind")
        if not isinstance(name, str) or not NAME.match(name) or name in names:
            raise OnlineEvalError(f"Evaluator names are unique, 1 to 40 letters, digits, - or _ (not {name!r}).")
        names.add(name)
        if kind not in ONLINE_KINDS:
            raise OnlineEvalError(
                f"Evaluator {name}: kind must be one of {', '.join(ONLINE_KINDS)} (live traffic has no expected "
                "output for the others)."
            )
        params = spec.setdefault("params", {})
        if kind in MODEL_KINDS:
            endpoint = ModelEndpoint.objects.filter(project_id=rule.project_id, pk=params.get("endpoint_id")).first()
            if endpoint is None:
                raise OnlineEvalError(f"Evaluator {name}: set endpoint_id to a model endpoint of this project.")
            if rule.daily_max_cost is not None and not _endpoint_priced(endpoint):
                raise OnlineEvalError(
                    f"Evaluator {name}: the endpoint {endpoint.name!r} has no known price, so a cost budget cannot "
                    "see its calls; give the endpoint a price or use a count budget only."
                )
            if kind == "llm_judge" and not str(params.get("rubric", "")).strip():
                raise OnlineEvalError(f"Evaluator {name}: set rubric to what the judge should look for.")
            if kind == "similarity" and not (params.get("reference") or params.get("against") == "input"):
                raise OnlineEvalError(
                    f'Evaluator {name}: similarity compares the output with "reference" (a text) or, with '
                    '"against": "input", with the generation\'s input.'
                )
        else:
            try:  # a rule that cannot score anything (a bad regex or schema) is refused now, not at every call
                evaluators.evaluate_pure(kind, "", None, params)
            except evaluators.EvaluatorError as exc:
                raise OnlineEvalError(f"Evaluator {name}: {exc}.") from None


def rule_create(*, project, actor: Any, **fields) -> OnlineEvalRule:
    rule = OnlineEvalRule(project=project, created_by=actor_user(actor), **fields)
    _check(rule)
    if OnlineEvalRule.objects.filter(project=project, name=rule.name).exists():
        raise OnlineEvalError(f"This project already has an online evaluation rule named {rule.name!r}.")
    try:
        with transaction.atomic():
            rule.save()
            audit_record(project_id=project.pk, actor=actor, action="online_rule.created", obj=rule,
                         after=_rule_state(rule))  # fmt: skip
    except IntegrityError:
        raise OnlineEvalError(f"This project already has an online evaluation rule named {rule.name!r}.") from None
    return rule


def rule_update(*, rule: OnlineEvalRule, actor: Any, **fields) -> OnlineEvalRule:
    """Change a rule (its name stays: the stored scores carry it)."""
    fields.pop("name", None)
    with transaction.atomic():
        current = OnlineEvalRule.objects.select_for_update().get(pk=rule.pk)
        before = _rule_state(current)
        for key, value in fields.items():
            setattr(current, key, value)
        _check(current)
        current.save()
        audit_record(project_id=current.project_id, actor=actor, action="online_rule.updated", obj=current,
                     before=before, after=_rule_state(current))  # fmt: skip
    return current


def rule_set_active(*, rule: OnlineEvalRule, active: bool, actor: Any) -> OnlineEvalRule:
    """Pause or resume: a paused rule samples nothing, and its pending evaluations are skipped."""
    with transaction.atomic():
        before = _rule_state(rule)
        rule.active = active
        rule.save(update_fields=["active", "updated_at"])
        audit_record(project_id=rule.project_id, actor=actor, action="online_rule.paused" if not active
                     else "online_rule.resumed", obj=rule, before=before, after=_rule_state(rule))  # fmt: skip
    return rule


def rule_delete(*, rule: OnlineEvalRule, actor: Any) -> None:
    """Delete a rule and its evaluations; the scores it stored on traces stay (they are history)."""
    with transaction.atomic():
        audit_record(project_id=rule.project_id, actor=actor, action="online_rule.deleted", obj=rule,
                     before=_rule_state(rule))  # fmt: skip
        rule.delete()


# --- sampling (inside the ingest transaction) -------------------------------------------------------


def _active_rules(project_id: int) -> list[OnlineEvalRule]:
    """The project's active rules, read at every ingest write (one small indexed query: a rule paused, changed or
    deleted a moment ago is never applied from a stale copy)."""
    return list(OnlineEvalRule.objects.filter(project_id=project_id, active=True).select_related("prompt"))


def sampled(rule_id: int, trace_id: str, span_id: str, rate: float) -> bool:
    """A deterministic draw: the same generation is always in or out of a rule's sample."""
    digest = hashlib.blake2b(f"{rule_id}:{trace_id}:{span_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def _matches(rule: OnlineEvalRule, gen: dict, versions: dict[int, tuple[int, int]], labels: dict) -> bool:
    prompt_id, number = versions.get(gen["prompt_version_id"] or 0, (None, None))
    if prompt_id != rule.prompt_id:
        return False
    if rule.version_number is not None and number != rule.version_number:
        return False
    if rule.label:
        if gen["prompt_label"]:
            return gen["prompt_label"] == rule.label
        return labels.get((rule.prompt_id, rule.label)) == gen["prompt_version_id"]
    return True


def on_written(written: Written) -> None:
    """Sample the generations one ingest write added for the project's active rules (in the batch's transaction)."""
    if not written.span_keys:
        return
    rules = _active_rules(written.project_id)
    if not rules:
        return
    ids = _sample(written.project_id, rules, written.span_keys, written.generations)
    if ids:
        transaction.on_commit(lambda: enqueue(ids))


def rule_backfill(*, rule: OnlineEvalRule, since: datetime, until: datetime | None = None, limit: int = 5000):
    """Sample the rule's share of generations stored between `since` and `until` (at most `limit`, newest first),
    as ingest would have; returns the ids of the evaluations it added (the caller runs or enqueues them)."""
    from apps.traces.models import Span

    keys = list(
        Span.objects.filter(
            project_id=rule.project_id, kind="generation", prompt_version__prompt_id=rule.prompt_id,
            start_time__gte=since, start_time__lt=until or timezone.now(),
        )
        .order_by("-start_time")
        .values_list("trace_id", "span_id")[:limit]
    )  # fmt: skip
    return _sample(rule.project_id, [rule], keys) if keys else []


def _sample(
    project_id: int, rules: list[OnlineEvalRule], span_keys: list[tuple[str, str]], known: list[dict] | None = None
) -> list[int]:
    """Add a pending evaluation for each generation among `span_keys` that a rule matches and samples; their ids.

    `known`: those generations' stored values when the writer passed them (else they are read)."""
    from apps.prompts.models import Label, PromptVersion
    from apps.traces.models import Span

    wanted = set(span_keys)
    gens = [] if known is None else [g for g in known if (g["trace_id"], g["span_id"]) in wanted]
    trace_ids = sorted({k[0] for k in span_keys}) if known is None else []
    for start in range(0, len(trace_ids), 500):
        for gen in Span.objects.filter(
            project_id=project_id, trace_id__in=trace_ids[start : start + 500], kind="generation"
        ).values("trace_id", "span_id", "prompt_version_id", "prompt_label", "start_time"):
            if (gen["trace_id"], gen["span_id"]) in wanted:
                gens.append(gen)
    version_ids = {g["prompt_version_id"] for g in gens if g["prompt_version_id"]}
    if not version_ids:
        return []
    versions = {pk: (p, n) for pk, p, n in PromptVersion.objects.filter(pk__in=version_ids).values_list(
        "pk", "prompt_id", "number")}  # fmt: skip
    prompt_ids = {r.prompt_id for r in rules}
    labels = {
        (p, name): v
        for p, name, v in Label.objects.filter(prompt_id__in=prompt_ids).values_list("prompt_id", "name", "version_id")
    }
    now = timezone.now()
    rows = [
        OnlineEvaluation(
            rule_id=rule.pk,
            project_id=project_id,
            trace_id=gen["trace_id"],
            span_id=gen["span_id"],
            prompt_version_id=gen["prompt_version_id"] or 0,
            generation_start=gen["start_time"],
            created_at=now,
        )  # fmt: skip
        for rule in rules
        for gen in gens
        if _matches(rule, gen, versions, labels) and sampled(rule.pk, gen["trace_id"], gen["span_id"], rule.sample_rate)
    ]
    if not rows:
        return []
    OnlineEvaluation.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    keys = {(r.rule_id, r.trace_id, r.span_id) for r in rows}
    found = []
    row_traces = sorted({r.trace_id for r in rows})
    for start in range(0, len(row_traces), 500):
        found += [
            pk
            for pk, rule_id, trace_id, span_id in OnlineEvaluation.objects.filter(
                rule_id__in={r.rule_id for r in rows},
                trace_id__in=row_traces[start : start + 500],
                status=OnlineEvalStatus.PENDING,
            ).values_list("pk", "rule_id", "trace_id", "span_id")  # fmt: skip
            if (rule_id, trace_id, span_id) in keys
        ]
    return found


def enqueue(ids: list[int]) -> None:
    from apps.monitoring.tasks import online_evaluate

    size = settings.ONLINE_EVAL_BATCH
    for start in range(0, len(ids), size):
        try:
            online_evaluate.apply_async(args=[ids[start : start + size]], queue="experiments")
        except Exception:  # the rows are stored: the sweep sends them again
            logger.exception("Could not enqueue online evaluations; the sweep will retry them")


# --- budget -------------------------------------------------------------------------------------------


def budget_day(now: datetime | None = None) -> date:
    """Budgets are per UTC day."""
    return (now or timezone.now()).astimezone(UTC).date()


def budget_reserve(*, rule: OnlineEvalRule, units: int, day: date, row_exists: bool = False) -> bool:
    """Take one evaluation and `units` of cost from the rule's budget of `day`, only if both stay within it.

    One conditional UPDATE: the database re-checks the limits on the row it changes, so concurrent workers
    never take more than the budget between them.
    """
    if not row_exists:
        OnlineEvalBudget.objects.bulk_create([OnlineEvalBudget(rule=rule, day=day)], ignore_conflicts=True)
    budget = OnlineEvalBudget.objects.filter(rule=rule, day=day)
    if rule.daily_max_evaluations is not None:
        budget = budget.filter(evaluations__lt=rule.daily_max_evaluations)
    if rule.daily_max_cost is not None:
        budget = budget.filter(cost_units__lte=cost_units(rule.daily_max_cost) - units)
    return budget.update(evaluations=F("evaluations") + 1, cost_units=F("cost_units") + units) == 1


def budget_settle(*, rule_id: int, day: date, reserved: int, spent: int) -> None:
    """Replace a reservation by what the calls cost (the reservation is an upper bound of it)."""
    if reserved != spent:
        OnlineEvalBudget.objects.filter(rule_id=rule_id, day=day).update(cost_units=F("cost_units") - reserved + spent)


def budget_today(rule: OnlineEvalRule, *, now: datetime | None = None) -> dict[str, Any]:
    row = OnlineEvalBudget.objects.filter(rule=rule, day=budget_day(now)).first()
    used = row.evaluations if row else 0
    spent = Decimal(row.cost_units) / COST_UNIT if row else Decimal(0)
    return {
        "evaluations": used,
        "max_evaluations": rule.daily_max_evaluations,
        "cost": spent,
        "max_cost": rule.daily_max_cost,
        "skipped": row.skipped if row else 0,
    }


# --- evaluating -----------------------------------------------------------------------------------------


@dataclass
class Work:
    """One claimed evaluation: the generation's texts and the model calls still to make."""

    evaluation: OnlineEvaluation
    rule: OnlineEvalRule
    output: str
    item_input: dict[str, Any]
    input_text: str
    results: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[dict, Any, list | None]] = field(default_factory=list)  # (spec, target, judge messages)
    reserved: int = 0
    day: date | None = None
    cost: Decimal = Decimal(0)
    outcome: tuple[str, str] | None = None  # set when the evaluation ended before its evaluators ran


def _claim(ids: list[int], token: str, now: datetime) -> list[OnlineEvaluation]:
    lease = now + timedelta(seconds=settings.ONLINE_EVAL_CLAIM_SECONDS)
    from django.db.models import Q

    claimable = Q(status=OnlineEvalStatus.PENDING) | Q(status=OnlineEvalStatus.RUNNING, claimed_until__lt=now)
    OnlineEvaluation.objects.filter(claimable, pk__in=ids).update(
        status=OnlineEvalStatus.RUNNING, claim_token=token, claimed_until=lease, attempts=F("attempts") + 1
    )
    return list(
        OnlineEvaluation.objects.filter(claim_token=token, status=OnlineEvalStatus.RUNNING).select_related("rule")
    )


def _scores_of(work: Work, now_us: int) -> list:
    """The traces Score records of an evaluation: a number or a pass (0/1) per evaluator, or its error."""
    from apps.traces.records import ScoreRecord

    evaluation, rule = work.evaluation, work.rule
    scores = []
    for index, result in enumerate(work.results):
        common = {"score_id": f"online-{evaluation.pk}-{index}", "trace_id": evaluation.trace_id,
                  "span_id": evaluation.span_id, "name": rule.score_name(result["evaluator"]), "source": SOURCE,
                  "created_us": now_us}  # fmt: skip
        if result.get("error"):
            scores.append(ScoreRecord(**common, data_type="categorical", string_value="error",
                                      comment=result["error"][:1000]))  # fmt: skip
        elif result["kind"] in MODEL_KINDS:
            scores.append(ScoreRecord(**common, data_type="numeric", value=result["value"],
                                      comment=result["explanation"][:1000]))  # fmt: skip
        else:
            scores.append(ScoreRecord(**common, data_type="boolean", value=1.0 if result["passed"] else 0.0,
                                      comment=result["explanation"][:1000]))  # fmt: skip
    return scores


def _finish(works: list[Work], token: str) -> dict[str, int]:
    """Write the evaluations' outcomes and their scores in one transaction, each once: only while `token` still
    holds its claim. Returns how many ended in each status."""
    from apps.traces import ingest

    counts: dict[str, int] = defaultdict(int)
    if not works:
        return counts
    now = timezone.now()
    now_us = int(now.timestamp() * 1_000_000)
    scores: dict[int, list] = defaultdict(list)
    with transaction.atomic():
        for work in works:
            status, error = work.outcome or _outcome(work)
            changed = OnlineEvaluation.objects.filter(
                pk=work.evaluation.pk, claim_token=token, status=OnlineEvalStatus.RUNNING
            ).update(status=status, results=work.results, error=error[:500], finished_at=now, claimed_until=None,
                     cost=work.cost if work.calls else None)  # fmt: skip
            if changed:
                counts[status] += 1
                scores[work.evaluation.project_id] += _scores_of(work, now_us)
        for project_id, records in scores.items():
            if records:
                ingest.rows_write(project_id=project_id, spans=[], scores=records)
    return counts


def _skip(evaluation: OnlineEvaluation, token: str, reason: str, *, over_budget: bool, day: date) -> None:
    with transaction.atomic():
        changed = OnlineEvaluation.objects.filter(
            pk=evaluation.pk, claim_token=token, status=OnlineEvalStatus.RUNNING
        ).update(status=OnlineEvalStatus.SKIPPED, error=reason, finished_at=timezone.now(), claimed_until=None)
        if changed and over_budget:
            OnlineEvalBudget.objects.filter(rule_id=evaluation.rule_id, day=day).update(skipped=F("skipped") + 1)


def _reservation(work: Work, priced: dict) -> int:
    """The most the work's model calls can cost, in 1e-8 units: input tokens with a margin, output at its cap.

    An endpoint without a known price costs nothing to the budget (a rule with a cost budget refuses one)."""
    from apps.providers import gateway

    total = Decimal(0)
    for spec, target, messages in work.calls:
        if target.endpoint_id not in priced:
            priced[target.endpoint_id] = gateway.estimate_cost(target, 1, 1) is not None
        if not priced[target.endpoint_id]:
            continue
        if spec["kind"] == "llm_judge":
            tokens_in = gateway.count_tokens(target, messages=messages)
            tokens_out = JUDGE_MAX_TOKENS
        else:
            tokens_in = sum(gateway.count_tokens(target, prompt=t) for t in _similarity_texts(spec, work))
            tokens_out = 0
        total += gateway.estimate_cost(target, int(tokens_in * 1.25) + 50, tokens_out) or Decimal(0)
    return cost_units(total)


def _similarity_texts(spec: dict, work: Work) -> list[str]:
    params = spec["params"]
    against = work.input_text if params.get("against") == "input" else str(params.get("reference", ""))
    return [work.output[: evaluators.MAX_SCORED_CHARS], against[: evaluators.MAX_SCORED_CHARS]]


def _call_models(work: Work) -> Work:
    """The work's model evaluators, in a pool thread: no database here, only the gateway."""
    from apps.providers import gateway

    for spec, target, messages in work.calls:
        result = {"evaluator": spec["name"], "kind": spec["kind"]}
        try:
            if spec["kind"] == "llm_judge":
                answer = gateway.chat(target, messages, params=dict(JUDGE_PARAMS))
                work.cost += answer.cost or Decimal(0)
                score = evaluators.parse_judgement(answer.output, spec["params"])
            else:
                vectors = gateway.embed(target, _similarity_texts(spec, work))
                work.cost += vectors.cost or Decimal(0)
                if len(vectors.vectors) != 2:
                    raise evaluators.EvaluatorError("the embedding model returned the wrong number of vectors")
                value = max(0.0, min(1.0, evaluators.cosine(vectors.vectors[0], vectors.vectors[1])))
                threshold = float(spec["params"].get("threshold", 0.8))
                score = evaluators.Score(round(value, 4), value >= threshold,
                                         f"cosine similarity {value:.3f} (threshold {threshold:g})")  # fmt: skip
            result.update(value=score.value, passed=score.passed, explanation=score.explanation)
        except evaluators.EvaluatorError as exc:
            result["error"] = str(exc)
        except gateway.GatewayError as exc:
            result["error"] = f"{exc.label}: {exc.message}"
        except Exception as exc:  # a failing call must end as an errored evaluation, never as a stuck one
            logger.exception("Online evaluator %s failed", spec["name"])
            result["error"] = f"{type(exc).__name__}: {exc}"
        work.results.append(result)
    return work


def _prepare(claimed: list[OnlineEvaluation], token: str, targets: dict) -> list[Work]:
    """The generations' texts, the pure evaluators' results, and the model calls still to make."""
    from apps.providers import gateway
    from apps.providers.models import ModelEndpoint
    from apps.traces.models import Span

    by_key: dict[tuple[str, str], dict] = {}
    by_project: dict[int, set[str]] = defaultdict(set)
    for evaluation in claimed:
        by_project[evaluation.project_id].add(evaluation.trace_id)
    for project_id, trace_ids in by_project.items():
        for span in Span.objects.filter(project_id=project_id, trace_id__in=trace_ids, kind="generation").values(
            "trace_id", "span_id", "output_text", "input_text", "variables"
        ):
            by_key[(span["trace_id"], span["span_id"])] = span
    works = []
    for evaluation in claimed:
        rule = evaluation.rule
        span = by_key.get((evaluation.trace_id, evaluation.span_id))
        if span is None:
            work = Work(evaluation, rule, "", {}, "")
            work.outcome = (OnlineEvalStatus.ERROR, "The generation is gone (deleted by retention?).")
            _finish([work], token)
            continue
        variables = span["variables"] if isinstance(span["variables"], dict) and span["variables"] else None
        work = Work(evaluation, rule, span["output_text"] or "", variables or {"input": span["input_text"]},
                    span["input_text"] or "")  # fmt: skip
        for spec in rule.evaluators:
            kind, params = spec["kind"], spec.get("params") or {}
            if kind not in MODEL_KINDS:
                result = {"evaluator": spec["name"], "kind": kind}
                try:
                    score = evaluators.evaluate_pure(kind, work.output, None, params)
                    result.update(value=score.value, passed=score.passed, explanation=score.explanation)
                except evaluators.EvaluatorError as exc:
                    result["error"] = str(exc)
                work.results.append(result)
                continue
            endpoint_id = params.get("endpoint_id")
            if endpoint_id not in targets:
                endpoint = ModelEndpoint.objects.filter(project_id=evaluation.project_id, pk=endpoint_id).first()
                try:
                    targets[endpoint_id] = gateway.Target.from_endpoint(endpoint) if endpoint else None
                except gateway.GatewayError as exc:
                    targets[endpoint_id] = exc
            target = targets[endpoint_id]
            if target is None or isinstance(target, gateway.GatewayError):
                problem = target.message if target is not None else "the evaluator's model endpoint is gone"
                work.results.append({"evaluator": spec["name"], "kind": kind, "error": problem})
                continue
            messages = None
            if kind == "llm_judge":
                try:
                    messages = evaluators.judge_messages(work.output, params.get("reference"), work.item_input,
                                                         params)  # fmt: skip
                except evaluators.EvaluatorError as exc:
                    work.results.append({"evaluator": spec["name"], "kind": kind, "error": str(exc)})
                    continue
            work.calls.append(({**spec, "params": params}, target, messages))
        works.append(work)
    return works


def _outcome(work: Work) -> tuple[str, str]:
    errors = [f"{r['evaluator']}: {r['error']}" for r in work.results if r.get("error")]
    if errors:
        return OnlineEvalStatus.ERROR, "; ".join(errors)
    return OnlineEvalStatus.DONE, ""


def evaluations_run(*, ids: list[int], concurrency: int | None = None) -> dict[str, int]:
    """Evaluate the given pending (or abandoned) evaluations; returns how many ended in each status.

    Running it twice evaluates nothing twice: only rows this call claims are evaluated, and an outcome is
    written only while the claim is held.
    """
    token = uuid.uuid4().hex
    now = timezone.now()
    claimed = _claim(ids, token, now)
    counts = {s: 0 for s in OnlineEvalStatus.values}
    if not claimed:
        return counts
    day = budget_day(now)
    targets: dict[Any, Any] = {}
    priced: dict[Any, bool] = {}
    for evaluation in claimed:
        if not evaluation.rule.active:
            _skip(evaluation, token, "The rule was paused.", over_budget=False, day=day)
            counts[OnlineEvalStatus.SKIPPED] += 1
    works = _prepare([e for e in claimed if e.rule.active], token, targets)
    counts[OnlineEvalStatus.ERROR] += sum(1 for e in claimed if e.rule.active) - len(works)
    window = concurrency or settings.ONLINE_EVAL_CONCURRENCY
    written: list[Work] = []  # finished, written in batches of WRITE_BATCH while calls are in flight
    budget_rows: set[int] = set()  # rules whose budget row of the day this run has made sure of

    def flush(at_least: int) -> None:
        if len(written) >= at_least:
            for status, n in _finish(written, token).items():
                counts[status] += n
            written.clear()

    with ThreadPoolExecutor(max_workers=window, thread_name_prefix="online-eval") as pool:
        running: set = set()
        for work in works:
            work.day = day
            work.reserved = _reservation(work, priced) if work.calls else 0
            reserved = budget_reserve(rule=work.rule, units=work.reserved, day=day,
                                      row_exists=work.rule.pk in budget_rows)  # fmt: skip
            budget_rows.add(work.rule.pk)
            if not reserved:
                _skip(work.evaluation, token, "Over the rule's daily budget.", over_budget=True, day=day)
                counts[OnlineEvalStatus.SKIPPED] += 1
                continue
            if not work.calls:
                written.append(work)
            else:
                running.add(pool.submit(_call_models, work))
            while len(running) >= window:
                running = _collect(running, written)
                flush(WRITE_BATCH)
        while running:
            running = _collect(running, written)
            flush(WRITE_BATCH)
    flush(1)
    return counts


def _collect(running: set, written: list[Work]) -> set:
    """Wait for calls to end; settle each one's reservation at once (so the budget frees up) and queue its write."""
    done, pending = wait(running, return_when=FIRST_COMPLETED)
    for future in done:
        work = future.result()
        spent = cost_units(work.cost)
        budget_settle(rule_id=work.rule.pk, day=work.day, reserved=work.reserved, spent=spent)
        if spent > work.reserved:  # the reservation's margin was too thin for this provider's tokenizer
            logger.warning("Online evaluation %s cost %s units, more than its reservation of %s",
                           work.evaluation.pk, spent, work.reserved)  # fmt: skip
        written.append(work)
    return pending


def evaluations_requeue(*, now: datetime | None = None) -> int:
    """Send again evaluations whose message was lost (pending for a while) or whose worker died (claim expired);
    one whose workers died MAX_ATTEMPTS times is marked errored instead (it may be what kills them)."""
    from django.db.models import Q

    now = now or timezone.now()
    stale = now - timedelta(seconds=120)
    abandoned = Q(status=OnlineEvalStatus.RUNNING, claimed_until__lt=now)
    OnlineEvaluation.objects.filter(abandoned, attempts__gte=MAX_ATTEMPTS).update(
        status=OnlineEvalStatus.ERROR, finished_at=now, claimed_until=None,
        error=f"Gave up: its worker stopped {MAX_ATTEMPTS} times before it finished.",
    )  # fmt: skip
    ids = list(
        OnlineEvaluation.objects.filter(Q(status=OnlineEvalStatus.PENDING, created_at__lt=stale) | abandoned)
        .order_by("pk")
        .values_list("pk", flat=True)[:5000]
    )
    if ids:
        enqueue(ids)
    return len(ids)


def evaluations_forget(*, now: datetime | None = None, chunk: int = 5000) -> int:
    """Delete finished evaluations and budget rows older than ONLINE_EVAL_KEEP_DAYS (their scores stay on the
    traces until trace retention); returns how many evaluations went."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.ONLINE_EVAL_KEEP_DAYS)
    deleted = 0
    while True:
        ids = list(
            OnlineEvaluation.objects.filter(created_at__lt=cutoff)
            .exclude(status__in=[OnlineEvalStatus.PENDING, OnlineEvalStatus.RUNNING])
            .values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            break
        OnlineEvaluation.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    OnlineEvalBudget.objects.filter(day__lt=cutoff.date()).delete()
    return deleted
