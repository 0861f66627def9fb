"""Runs one batch of cells: claim them, call the models concurrently, write each result once.

The calls run on an asyncio loop in a helper thread that lives as long as the
worker process (so HTTP connection pools and the limiter's Redis client are
reused from batch to batch); the task's own thread owns the database: it
writes each result as it arrives, renews the claims, watches the experiment
for pause, cancel and budget, and tells the calls to stop. A result is
written only while this batch still holds the cell's claim, so a batch
delivered twice, or a cell swept from a dead worker, is never written twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.experiments import evaluators, limits, services
from apps.experiments.models import Cell, CellStatus, EvaluatorConfig, Experiment, ExperimentStatus, Score
from apps.prompts import sandbox
from apps.prompts.content import content_of, render_content
from apps.providers import gateway
from apps.providers import services as provider_services

logger = logging.getLogger(__name__)


@dataclass
class Job:
    cell_id: int
    endpoint_id: int
    target: Any
    messages: list[dict] | None
    prompt: str | None
    params: dict[str, Any]
    expected: Any
    item_input: dict[str, Any]


@dataclass
class Outcome:
    cell_id: int
    completion: Any = None
    error: Any = None
    scores: list[tuple[int, evaluators.Score | None, str]] = field(default_factory=list)
    not_started: bool = False


def call_params(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A prompt version's model config as call parameters, with the variant's overrides on top."""
    params = {k: v for k, v in (config or {}).items() if k not in ("model", "extra")}
    params.update((config or {}).get("extra") or {})
    params.update(overrides or {})
    return params


def _claim(experiment_id: int, cell_ids: list[int], token: str) -> list[Cell]:
    now = timezone.now()
    lease = timedelta(seconds=settings.EXPERIMENT_CLAIM_SECONDS)
    claimable = Q(status=CellStatus.PENDING) | Q(status=CellStatus.RUNNING, claim_expires_at__lt=now)
    Cell.objects.filter(claimable, pk__in=cell_ids, experiment_id=experiment_id).update(
        status=CellStatus.RUNNING, claim_token=token, claim_expires_at=now + lease, started_at=now
    )
    return list(
        Cell.objects.filter(claim_token=token, status=CellStatus.RUNNING).select_related(
            "item", "variant__prompt_version", "variant__endpoint"
        )
    )


def _fail(cell_id: int, token: str, kind: str, message: str, attempts: int = 0) -> bool:
    return bool(
        Cell.objects.filter(pk=cell_id, claim_token=token, status=CellStatus.RUNNING).update(
            status=CellStatus.FAILED,
            error_kind=kind,
            error_message=message[:5000],
            attempts=attempts,
            finished_at=timezone.now(),
            claim_expires_at=None,
        )
    )


def _prepare(cells: list[Cell], token: str) -> list[Job]:
    jobs, targets, contents = [], {}, {}
    for cell in cells:
        variant = cell.variant
        if variant.pk not in contents:
            contents[variant.pk] = content_of(variant.prompt_version)
            try:
                # A local model still installing fails the cell with its progress ("rerun failed" later).
                provider_services.endpoint_refuse_unready(endpoint=variant.endpoint)
                targets[variant.pk] = gateway.Target.from_endpoint(variant.endpoint)
            except gateway.GatewayError as exc:
                targets[variant.pk] = exc
        target = targets[variant.pk]
        if isinstance(target, gateway.GatewayError):
            _fail(cell.pk, token, target.kind, target.message)
            continue
        inputs = cell.item.input if isinstance(cell.item.input, dict) else {}
        try:
            rendered = render_content(contents[variant.pk], inputs)
        except sandbox.TemplateProblem as exc:
            _fail(cell.pk, token, "bad_request", f"The prompt did not render for this row: {exc}")
            continue
        jobs.append(
            Job(
                cell_id=cell.pk,
                endpoint_id=variant.endpoint_id,
                target=target,
                messages=rendered if isinstance(rendered, list) else None,
                prompt=rendered if isinstance(rendered, str) else None,
                params=call_params(variant.prompt_version.config, variant.params),
                expected=cell.item.expected,
                item_input=inputs,
            )
        )
    return jobs


async def _model_score(config: EvaluatorConfig, output: str, job: Job, judges: dict[int, Any]):
    target = judges.get(config.params.get("endpoint_id"))
    if target is None:
        raise evaluators.EvaluatorError("the evaluator's model endpoint is missing")
    if config.kind == "similarity":

        async def embed(texts):
            return (await gateway.aembed(target, texts)).vectors

        return await evaluators.similarity(output, job.expected, config.params, embed=embed)
    messages = evaluators.judge_messages(output, job.expected, job.item_input, config.params)
    answer = await gateway.achat(target, messages, params={"temperature": 0, "max_tokens": 200})
    return evaluators.parse_judgement(answer.output, config.params)


async def _score_all(output: str, job: Job, configs: list[EvaluatorConfig], judges: dict[int, Any]):
    scores = []
    for config in configs:
        try:
            if config.kind in evaluators.PURE:
                score = evaluators.evaluate_pure(config.kind, output, job.expected, config.params)
            else:
                score = await _model_score(config, output, job, judges)
            scores.append((config.pk, score, ""))
        except evaluators.EvaluatorError as exc:
            scores.append((config.pk, None, str(exc)))
        except gateway.GatewayError as exc:
            scores.append((config.pk, None, f"{exc.label}: {exc.message}"))
    return scores


class Ledger:
    """Money spent, as the calls finish (not as they are written), so a call that would start past the
    budget does not start. Other batches' spending is seen through the database when a batch starts."""

    def __init__(self, spent: Decimal, budget: Decimal | None):
        self.spent, self.budget, self._lock = spent, budget, threading.Lock()

    def add(self, cost: Decimal | None) -> None:
        with self._lock:
            self.spent += cost or Decimal(0)

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return self.budget is not None and self.spent >= self.budget


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_limiter = None


def _calls_loop() -> asyncio.AbstractEventLoop:
    """This process's loop for model calls, started on first use (after a prefork worker has forked)."""
    global _loop, _loop_pid, _limiter
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or not _loop.is_running():
            loop = asyncio.new_event_loop()
            running = threading.Event()
            loop.call_soon(running.set)
            threading.Thread(target=loop.run_forever, name="experiment-calls", daemon=True).start()
            running.wait(10)
            _loop, _loop_pid, _limiter = loop, os.getpid(), None
        return _loop


def _shared_limiter():
    global _limiter
    if _limiter is None:  # only ever touched from the calls loop's thread
        _limiter = limits.make_limiter()
    return _limiter


async def _run_jobs(jobs, configs, judges, results: queue.Queue, stop: threading.Event, ledger: Ledger):
    limiter = _shared_limiter()

    async def one(job: Job) -> None:
        outcome = Outcome(job.cell_id)
        try:
            async with limits.endpoint_slot(
                limiter,
                endpoint_id=job.endpoint_id,
                concurrency=job.target.max_concurrency,
                per_minute=job.target.requests_per_minute,
                stopped=stop.is_set,
            ) as granted:
                if not granted or stop.is_set() or ledger.exhausted:
                    outcome.not_started = True
                    return
                try:
                    outcome.completion = await gateway.agenerate(
                        job.target, messages=job.messages, prompt=job.prompt, params=job.params
                    )
                    ledger.add(outcome.completion.cost)
                except gateway.GatewayError as exc:
                    outcome.error = exc
            if outcome.completion is not None and configs:
                outcome.scores = await _score_all(outcome.completion.output, job, configs, judges)
        except Exception as exc:  # a bug must fail the cell with its message, not the whole batch
            outcome.error = gateway.GatewayError("provider_error", f"{type(exc).__name__}: {exc}", retryable=False)
        finally:
            results.put(outcome)

    await asyncio.gather(*(one(job) for job in jobs))


_DONE_COLUMNS = (
    "status", "request", "output", "finish_reason", "tokens_in", "tokens_out", "cost", "latency_ms", "attempts",
    "provider_request_id", "finished_at", "claim_expires_at",
)  # fmt: skip


def _done_statement() -> str:
    table = connection.ops.quote_name(Cell._meta.db_table)
    columns = ", ".join(f"{connection.ops.quote_name(Cell._meta.get_field(c).column)} = %s" for c in _DONE_COLUMNS)
    return f"UPDATE {table} SET {columns} WHERE id = %s AND claim_token = %s AND status = %s"  # noqa: S608 - names only


def _done_row(outcome: Outcome, token: str, now) -> list[Any]:
    done = outcome.completion
    values = {
        "status": CellStatus.DONE,
        "request": done.request,
        "output": done.output.replace("\x00", "\ufffd"),  # PostgreSQL text cannot hold NUL
        "finish_reason": (done.finish_reason or "")[:40],
        "tokens_in": done.tokens_in,
        "tokens_out": done.tokens_out,
        "cost": done.cost,
        "latency_ms": done.latency_ms,
        "attempts": done.attempts,
        "provider_request_id": (done.request_id or "")[:200],
        "finished_at": now,
        "claim_expires_at": None,
    }
    row = [Cell._meta.get_field(name).get_db_prep_save(values[name], connection) for name in _DONE_COLUMNS]
    return [*row, outcome.cell_id, token, CellStatus.RUNNING]


def _write(outcomes: list[Outcome], token: str) -> Decimal:
    """Store each outcome whose cell this batch still holds; returns the cost added.

    The finished cells are one executemany of an UPDATE guarded by the claim (the ORM's per-row
    query building cost more CPU than the call itself); when fewer rows changed than were sent,
    the cells still showing this batch's token as done are the ones it wrote.
    """
    done = [o for o in outcomes if not o.not_started and o.error is None]
    for outcome in outcomes:
        if not outcome.not_started and outcome.error is not None:
            error = outcome.error
            _fail(outcome.cell_id, token, error.kind, error.message, getattr(error, "attempts", 1))
    # not_started: still held by this batch; _settle_after_stop puts them back or cancels them.
    if not done:
        return Decimal(0)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.executemany(_done_statement(), [_done_row(o, token, now) for o in done])
        changed = cursor.rowcount
    if changed != len(done):
        ours = set(
            Cell.objects.filter(
                pk__in=[o.cell_id for o in done], claim_token=token, status=CellStatus.DONE, finished_at=now
            ).values_list("pk", flat=True)
        )
        done = [o for o in done if o.cell_id in ours]
    scores = [
        Score(
            cell_id=outcome.cell_id,
            evaluator_id=evaluator_id,
            value=score.value if score else None,
            passed=score.passed if score else None,
            explanation=score.explanation if score else "",
            error=error,
        )
        for outcome in done
        for evaluator_id, score, error in outcome.scores
    ]
    if scores:
        Score.objects.bulk_create(scores, ignore_conflicts=True)
    return sum((o.completion.cost or Decimal(0) for o in done), Decimal(0))


def run_batch(experiment_id: int, cell_ids: list[int]) -> dict[str, int]:
    experiment = Experiment.objects.filter(pk=experiment_id).first()
    if experiment is None or experiment.status != ExperimentStatus.RUNNING:
        return {"claimed": 0}
    token = uuid.uuid4().hex
    cells = _claim(experiment_id, cell_ids, token)
    jobs = _prepare(cells, token)
    configs = list(EvaluatorConfig.objects.filter(experiment_id=experiment_id))
    judge_ids = {c.params.get("endpoint_id") for c in configs if c.kind not in evaluators.PURE}
    from apps.providers.models import ModelEndpoint

    judges = {e.pk: gateway.Target.from_endpoint(e) for e in ModelEndpoint.objects.filter(pk__in=judge_ids)}
    results: queue.Queue[Outcome] = queue.Queue()
    stop = threading.Event()
    spent = services.spent_so_far(experiment_id) if experiment.budget is not None else Decimal(0)
    ledger = Ledger(spent, experiment.budget)
    calls = asyncio.run_coroutine_threadsafe(_run_jobs(jobs, configs, judges, results, stop, ledger), _calls_loop())
    lease = settings.EXPERIMENT_CLAIM_SECONDS
    next_check, next_renewal = time.monotonic() + 1.0, time.monotonic() + lease / 3
    waiting = len(jobs)  # the call thread puts exactly one outcome per job
    while waiting:
        try:
            outcome = results.get(timeout=0.5)
        except queue.Empty:
            if calls.done() and results.empty():
                break  # the calls ended without reporting (a bug): leave the claims to expire and the sweep
            outcome = None
        if outcome is not None:
            # Write whatever else has arrived too, in one transaction: one commit for many cells.
            arrived = [outcome]
            while len(arrived) < 100:
                try:
                    arrived.append(results.get_nowait())
                except queue.Empty:
                    break
            waiting -= len(arrived)
            with transaction.atomic():
                spent += _write(arrived, token)
            if experiment.budget is not None and spent >= experiment.budget and not stop.is_set():
                stop.set()
                services.experiment_stop_for_budget(experiment_id=experiment_id, spent=spent)
        now = time.monotonic()
        if now >= next_check:
            next_check = now + 1.0
            status = Experiment.objects.filter(pk=experiment_id).values_list("status", flat=True).first()
            if status != ExperimentStatus.RUNNING:
                stop.set()
        if now >= next_renewal:
            next_renewal = now + lease / 3
            Cell.objects.filter(claim_token=token, status=CellStatus.RUNNING).update(
                claim_expires_at=timezone.now() + timedelta(seconds=lease)
            )
    try:
        calls.result(timeout=30)
    except Exception:  # logged; the cells it did not report are swept once their claims expire
        logger.exception("experiment %s: the calls of a batch failed", experiment_id)
    _settle_after_stop(experiment_id, token)
    services.experiment_finish_if_done(experiment_id=experiment_id)
    return {"claimed": len(cells), "called": len(jobs)}


def _settle_after_stop(experiment_id: int, token: str) -> None:
    """Cells this batch still holds go back to pending (pause) or are cancelled (cancel, budget)."""
    status = Experiment.objects.filter(pk=experiment_id).values_list("status", flat=True).first()
    held = Cell.objects.filter(claim_token=token, status=CellStatus.RUNNING)
    if status in (ExperimentStatus.CANCELLED, ExperimentStatus.STOPPED):
        held.update(status=CellStatus.CANCELLED, claim_expires_at=None)
    else:
        held.update(status=CellStatus.PENDING, claim_token="", claim_expires_at=None, started_at=None)
