"""Runs an experiment's cells as a continuous pull: a window of calls in flight, refilled as each one ends.

A `run_batch` task starts a puller in its worker process. The puller claims the
batch's cells, then keeps up to EXPERIMENT_WINDOW calls in flight: as calls end
and their results are written, it claims the experiment's next pending cells
(and, now and then, cells whose claim expired: a killed worker's). So a slow
call (a hang, a long Retry-After) holds only its own slot and its own place in
the window, never a whole batch. The puller ends when nothing is left to
claim and its last call has been written; a message for cells that another
puller already took finds nothing to claim and ends at once.

The calls run on an asyncio loop in a helper thread that lives as long as the
worker process (so HTTP connection pools and the limiter's Redis client are
reused); the gateway takes each call's endpoint slot and minute budget, and
checks the prompt for keys and the local model for readiness. The task's own
thread owns the database: it claims, writes each result as it arrives,
renews its claims (EXPERIMENT_CLAIM_SECONDS, renewed every quarter of it), and
watches the experiment for pause, cancel and budget. A result is written only
while this puller still holds the cell's claim, so a message delivered twice,
or a cell swept from a dead worker, is never written twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.datasets.models import DatasetItem
from apps.experiments import evaluators, rubrics, selectors, services
from apps.experiments.models import (
    Cell,
    CellStatus,
    EvaluatorConfig,
    Experiment,
    ExperimentStatus,
    Score,
    Variant,
)
from apps.prompts import sandbox
from apps.prompts.content import content_of, render_content
from apps.providers import gateway

logger = logging.getLogger(__name__)


# A result waits at most this long to be written with the ones that arrive after it: one write for several
# cells instead of one each (each write is a round trip, and its thread's wait for the GIL after it).
WRITE_SECONDS = 0.1


@dataclass
class Job:
    cell_id: int
    token: str
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
    token: str
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


class _Statements:
    """The runner's hot statements as SQL text, built once per database vendor (the ORM's query building cost
    more CPU per claim than the claim itself: a few milliseconds for a handful of cells)."""

    def __init__(self, vendor: str):
        q = connection.ops.quote_name
        cell = Cell._meta

        def c(name: str) -> str:
            return q(cell.get_field(name).column)

        table, pk = q(cell.db_table), q(cell.pk.column)
        status, token, until, experiment = c("status"), c("claim_token"), c("claim_expires_at"), c("experiment")
        item = DatasetItem._meta
        item_pk, item_input, item_expected = (
            q(f.column) for f in (item.pk, item.get_field("input"), item.get_field("expected"))
        )
        self.returning = vendor == "postgresql" or (vendor == "sqlite" and _sqlite_returns())
        back = f" RETURNING {pk}, {c('variant')}, {c('item')}" if self.returning else ""
        claim = f"UPDATE {table} SET {status} = %s, {token} = %s, {until} = %s, {c('started_at')} = %s WHERE "  # noqa: S608
        order = ", ".join(c(name.removesuffix("_id")) for name in cell.ordering)
        expired = f"{status} = %s AND {until} < %s"
        # On PostgreSQL two pullers' subqueries would pick the same first rows: the second UPDATE waits for the
        # first, then finds them taken and claims nothing, and its puller would stop as if nothing were
        # pending. SKIP LOCKED hands it the next rows instead. The rows are chosen once (an ARRAY(...) is an
        # InitPlan: a semi-join could run the locking subquery again and take more rows than its LIMIT).
        # SQLite runs one writing statement at a time: nothing to skip there.
        if vendor == "postgresql":
            chosen, skip, end = f"{pk} = ANY(ARRAY(", " FOR UPDATE SKIP LOCKED", "))"
        else:
            chosen, skip, end = f"{pk} IN (", "", ")"
        # Names only (quoted by the backend); every value is a parameter.
        self.claim_pending = (
            f"{claim}{chosen}SELECT {pk} FROM {table} WHERE {experiment} = %s AND {status} = %s "  # noqa: S608
            f"ORDER BY {order} LIMIT %s{skip}{end} AND {status} = %s{back}"
        )
        self.claim_expired = (
            f"{claim}{chosen}SELECT {pk} FROM {table} WHERE {experiment} = %s AND {expired} "  # noqa: S608
            f"ORDER BY {order} LIMIT %s{skip}{end} AND {expired}{back}"
        )
        self.claim_given = f"{claim}{pk} IN ({{ids}}) AND {experiment} = %s AND ({status} = %s OR ({expired})){back}"
        self.claimed = f"SELECT {pk}, {c('variant')}, {c('item')} FROM {table} WHERE {token} = %s AND {status} = %s"  # noqa: S608
        self.items = (
            f"SELECT {item_pk}, {item_input}, {item_expected} FROM {q(item.db_table)} WHERE {item_pk} IN ({{ids}})"  # noqa: S608
        )
        # On PostgreSQL, where each statement is a round trip (and, in a busy worker, a wait for the GIL after
        # it), a claim returns its rows' input and expected output too, and the finished cells of a write are
        # one UPDATE from a VALUES list that returns the cells it changed: one round trip each.
        self.one_trip = vendor == "postgresql"
        columns = ", ".join(f"{c(name)} = %s" for name in _DONE_COLUMNS)
        self.done = f"UPDATE {table} SET {columns} WHERE {pk} = %s AND {token} = %s AND {status} = %s"  # noqa: S608
        if not self.one_trip:
            return
        joined = f"JOIN {q(item.db_table)} AS item ON item.{item_pk} = claimed.{c('item')}"
        self.claim_pending, self.claim_expired, self.claim_given = (
            f"WITH claimed AS ({statement}) SELECT claimed.{pk}, claimed.{c('variant')}, item.{item_input}, "  # noqa: S608
            f"item.{item_expected} FROM claimed {joined}"
            for statement in (self.claim_pending, self.claim_expired, self.claim_given)
        )
        # Each VALUES row: the cell's id and claim token, then the call's columns, each cast to its column's
        # type (a list of parameters has no types of its own).
        fields = [cell.pk, cell.get_field("claim_token"), *(cell.get_field(name) for name in _CALL_COLUMNS)]
        self.done_row = "(" + ", ".join(f"%s::{f.cast_db_type(connection)}" for f in fields) + ")"
        names = ", ".join(["id", "token", *_CALL_COLUMNS])
        assigned = ", ".join(f"{c(name)} = v.{name}" for name in _CALL_COLUMNS)
        self.done_values = (
            f"UPDATE {table} SET {assigned}, {status} = %s, {c('finished_at')} = %s, {until} = NULL "  # noqa: S608
            f"FROM (VALUES {{rows}}) AS v({names}) WHERE {table}.{pk} = v.id AND {table}.{token} = v.token "
            f"AND {table}.{status} = %s RETURNING {table}.{pk}"
        )


def _sqlite_returns() -> bool:
    import sqlite3

    return sqlite3.sqlite_version_info >= (3, 35)


_statements: dict[str, _Statements] = {}


def _sql() -> _Statements:
    found = _statements.get(connection.vendor)
    if found is None:
        found = _statements[connection.vendor] = _Statements(connection.vendor)
    return found


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


@dataclass
class Claimed:
    """A claimed cell, as the puller needs it: its variant and its row's input and expected output."""

    cell_id: int
    variant_id: int
    item_input: Any
    expected: Any


def _claim(experiment_id: int, token: str, *, cell_ids: list[int] | None = None, limit: int = 0, expired=False):
    """Claim cells for `token` in one UPDATE: the given ones, or up to `limit` pending (or expired) ones.

    The UPDATE re-checks each row's state, so two workers racing for a cell never both get it. Returns the
    claimed cells with their rows' input and expected output (one more query).
    """
    sql = _sql()
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    until = connection.ops.adapt_datetimefield_value(now + timedelta(seconds=settings.EXPERIMENT_CLAIM_SECONDS))
    claim = [CellStatus.RUNNING, token, until, stamp]
    if cell_ids is not None:
        if not cell_ids:
            return []
        statement = sql.claim_given.format(ids=_placeholders(len(cell_ids)))
        params = [*claim, *cell_ids, experiment_id, CellStatus.PENDING, CellStatus.RUNNING, stamp]
    elif expired:
        statement = sql.claim_expired
        params = [*claim, experiment_id, CellStatus.RUNNING, stamp, limit, CellStatus.RUNNING, stamp]
    else:
        statement = sql.claim_pending
        params = [*claim, experiment_id, CellStatus.PENDING, limit, CellStatus.PENDING]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        if sql.one_trip:
            return _claimed_cells(cursor.fetchall())
        if sql.returning:
            rows = cursor.fetchall()
        elif cursor.rowcount:
            cursor.execute(sql.claimed, [token, CellStatus.RUNNING])
            rows = cursor.fetchall()
        else:
            rows = []
        if not rows:
            return []
        item_ids = list({item_id for _cell, _variant, item_id in rows})
        cursor.execute(sql.items.format(ids=_placeholders(len(item_ids))), item_ids)
        items = cursor.fetchall()
    data = {pk: (raw_input, raw) for pk, raw_input, raw in items}
    return _claimed_cells([(cell_id, variant_id, *data[item_id]) for cell_id, variant_id, item_id in rows])


def _claimed_cells(rows: list[tuple]) -> list[Claimed]:
    """Claimed cells from (cell, variant, raw input, raw expected) rows, by id (the order a test or a log
    reads them in)."""
    input_field, expected_field = DatasetItem._meta.get_field("input"), DatasetItem._meta.get_field("expected")
    rows.sort(key=lambda row: row[0])
    return [
        Claimed(
            cell_id,
            variant_id,
            input_field.from_db_value(raw_input, None, connection),
            expected_field.from_db_value(raw, None, connection),
        )
        for cell_id, variant_id, raw_input, raw in rows
    ]


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


@dataclass
class VariantCall:
    """What every cell of a variant shares, read once per puller: its endpoint's target (or why it cannot be
    called), its prompt's content, and its call parameters."""

    endpoint_id: int
    target: Any
    content: Any
    params: dict[str, Any]


def _variant_calls(variant_ids, known: dict[int, VariantCall]) -> None:
    """Fill `known` with the variants it does not hold yet (one query for all of them)."""
    missing = [pk for pk in set(variant_ids) if pk not in known]
    if not missing:
        return
    for variant in Variant.objects.filter(pk__in=missing).select_related("prompt_version", "endpoint"):
        try:
            target = gateway.Target.from_endpoint(variant.endpoint)
        except gateway.GatewayError as exc:
            target = exc
        known[variant.pk] = VariantCall(
            endpoint_id=variant.endpoint_id,
            target=target,
            content=content_of(variant.prompt_version),
            params=call_params(variant.prompt_version.config, variant.params),
        )


def _prepare(cells: list[Claimed], token: str, variants: dict[int, VariantCall]) -> list[Job]:
    """The calls of claimed cells; a cell that cannot be called (its prompt does not render, its endpoint's
    key is unreadable) fails at once. `variants` is the puller's cache of what a variant's cells share."""
    _variant_calls([cell.variant_id for cell in cells], variants)
    jobs = []
    for cell in cells:
        variant = variants[cell.variant_id]
        target = variant.target
        if isinstance(target, gateway.GatewayError):
            _fail(cell.cell_id, token, target.kind, target.message)
            continue
        inputs = cell.item_input if isinstance(cell.item_input, dict) else {}
        try:
            rendered = render_content(variant.content, inputs)
        except sandbox.TemplateProblem as exc:
            _fail(cell.cell_id, token, "bad_request", f"The prompt did not render for this row: {exc}")
            continue
        jobs.append(
            Job(
                cell_id=cell.cell_id,
                token=token,
                endpoint_id=variant.endpoint_id,
                target=target,
                messages=rendered if isinstance(rendered, list) else None,
                prompt=rendered if isinstance(rendered, str) else None,
                params=variant.params,
                expected=cell.expected,
                item_input=inputs,
            )
        )
    return jobs


async def _model_score(
    config: EvaluatorConfig, output: str, job: Job, judges: dict[int, Any], judge_prompts: dict[int, Any] | None = None
):
    target = judges.get(config.params.get("endpoint_id"))
    if target is None:
        raise evaluators.EvaluatorError("the evaluator's model endpoint is missing")
    if config.kind == "similarity":

        async def embed(texts):
            return (await gateway.aembed(target, texts)).vectors

        return await evaluators.similarity(output, job.expected, config.params, embed=embed)
    version_id = config.params.get("judge_prompt_version_id")
    if version_id:
        content = (judge_prompts or {}).get(version_id)
        if content is None:
            raise evaluators.EvaluatorError("the judge prompt version is missing")
        messages = rubrics.judge_prompt_messages(
            content, output=output, expected=job.expected, item_input=job.item_input, params=config.params
        )
    else:  # an evaluator made before judge prompts were studio prompts, or through the API without one
        messages = evaluators.judge_messages(output, job.expected, job.item_input, config.params)
    answer = await gateway.achat(target, messages, params={"temperature": 0, "max_tokens": 200})
    return evaluators.parse_judgement(answer.output, config.params)


async def _score_all(
    output: str,
    job: Job,
    configs: list[EvaluatorConfig],
    judges: dict[int, Any],
    judge_prompts: dict[int, Any] | None = None,
):
    scores = []
    for config in configs:
        try:
            if config.kind in evaluators.PURE:
                score = evaluators.evaluate_pure(config.kind, output, job.expected, config.params)
            else:
                score = await _model_score(config, output, job, judges, judge_prompts)
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


def _calls_loop() -> asyncio.AbstractEventLoop:
    """This process's loop for model calls, started on first use (after a prefork worker has forked)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or not _loop.is_running():
            loop = asyncio.new_event_loop()
            running = threading.Event()
            loop.call_soon(running.set)
            threading.Thread(target=loop.run_forever, name="experiment-calls", daemon=True).start()
            running.wait(10)
            _loop, _loop_pid = loop, os.getpid()
        return _loop


async def _run_jobs(jobs, configs, judges, results: queue.Queue, stopped, ledger: Ledger, judge_prompts=None):
    """Call each job (the gateway waits for its slot) and put exactly one Outcome per job on `results`."""

    async def one(job: Job) -> None:
        outcome = Outcome(job.cell_id, job.token)
        try:
            if stopped():
                outcome.not_started = True
                return
            try:
                outcome.completion = await gateway.agenerate(
                    job.target,
                    messages=job.messages,
                    prompt=job.prompt,
                    params=job.params,
                    stopped=stopped,
                    settle=lambda completion: ledger.add(completion.cost),
                )
            except gateway.CallNotStarted:
                outcome.not_started = True
                return
            except gateway.GatewayError as exc:
                outcome.error = exc
            if outcome.completion is not None and configs:
                outcome.scores = await _score_all(outcome.completion.output, job, configs, judges, judge_prompts)
        except Exception as exc:  # a bug must fail the cell with its message, not the whole puller
            outcome.error = gateway.GatewayError("provider_error", f"{type(exc).__name__}: {exc}", retryable=False)
        finally:
            results.put(outcome)

    await asyncio.gather(*(one(job) for job in jobs))


# A finished call's columns, as _call_values gives them; then the claim's end.
_CALL_COLUMNS = (
    "request", "output", "finish_reason", "tokens_in", "tokens_out", "cost", "latency_ms", "attempts",
    "provider_request_id",
)  # fmt: skip
_DONE_COLUMNS = ("status", *_CALL_COLUMNS, "finished_at", "claim_expires_at")


def _call_values(outcome: Outcome) -> list[Any]:
    """The _CALL_COLUMNS of a finished cell: plain values as they are, the JSON request and the cost through
    their fields."""
    call, field = outcome.completion, Cell._meta.get_field
    return [
        field("request").get_db_prep_save(call.request, connection),
        call.output.replace("\x00", "\ufffd"),  # PostgreSQL text cannot hold NUL
        (call.finish_reason or "")[:40],
        call.tokens_in,
        call.tokens_out,
        field("cost").get_db_prep_save(call.cost, connection),
        call.latency_ms,
        call.attempts,
        (call.request_id or "")[:200],
    ]


def _store_done(done: list[Outcome]) -> set[int]:
    """Write the finished cells whose claims still hold; returns the ids of those written.

    On PostgreSQL one UPDATE from a VALUES list, returning the rows it changed. Elsewhere one executemany of
    an UPDATE guarded by the claim (the ORM's per-row query building cost more CPU than the call itself);
    when fewer rows changed than were sent, the cells still showing their token as done are the ones written.
    """
    sql = _sql()
    now = timezone.now()
    stamp = Cell._meta.get_field("finished_at").get_db_prep_save(now, connection)
    with connection.cursor() as cursor:
        if sql.one_trip:
            params = [value for o in done for value in (o.cell_id, o.token, *_call_values(o))]
            statement = sql.done_values.format(rows=", ".join([sql.done_row] * len(done)))
            cursor.execute(statement, [CellStatus.DONE, stamp, *params, CellStatus.RUNNING])
            return {pk for (pk,) in cursor.fetchall()}
        rows = [[CellStatus.DONE, *_call_values(o), stamp, None, o.cell_id, o.token, CellStatus.RUNNING] for o in done]
        cursor.executemany(sql.done, rows)
        changed = cursor.rowcount
    if changed == len(done):
        return {o.cell_id for o in done}
    ours = Cell.objects.filter(pk__in=[o.cell_id for o in done], status=CellStatus.DONE, finished_at=now)
    tokens = dict(ours.values_list("pk", "claim_token"))
    return {o.cell_id for o in done if tokens.get(o.cell_id) == o.token}


def _write(outcomes: list[Outcome]) -> Decimal:
    """Store each outcome whose cell its claim still holds, in one transaction; returns the cost added.

    Finished cells without scores are one statement: then no transaction is opened around it (on
    PostgreSQL its BEGIN and COMMIT would be two more round trips)."""
    one_statement = all(o.not_started or (o.error is None and not o.scores) for o in outcomes)
    with nullcontext() if one_statement else transaction.atomic():
        return _write_all(outcomes)


def _write_all(outcomes: list[Outcome]) -> Decimal:
    done = [o for o in outcomes if not o.not_started and o.error is None]
    for outcome in outcomes:
        if not outcome.not_started and outcome.error is not None:
            error = outcome.error
            _fail(outcome.cell_id, outcome.token, error.kind, error.message, getattr(error, "attempts", 1))
    # not_started: still held by this puller; _settle_after_stop puts them back or cancels them.
    if not done:
        return Decimal(0)
    written = _store_done(done)
    done = [o for o in done if o.cell_id in written]
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


class Puller:
    """One worker process's continuous pull on one experiment (see the module's docstring)."""

    def __init__(self, experiment: Experiment):
        self.experiment_id = experiment.pk
        self.budget = experiment.budget
        self.window = settings.EXPERIMENT_WINDOW
        self.lease = settings.EXPERIMENT_CLAIM_SECONDS
        # Every claim of this puller has its own token, all starting with this prefix (renewed together).
        self.prefix = uuid.uuid4().hex[:20]
        self.rounds = 0
        self.variants: dict[int, VariantCall] = {}
        self.configs = list(EvaluatorConfig.objects.filter(experiment_id=experiment.pk))
        judge_ids = {c.params.get("endpoint_id") for c in self.configs if c.kind not in evaluators.PURE}
        from apps.providers.models import ModelEndpoint

        self.judges = {e.pk: gateway.Target.from_endpoint(e) for e in ModelEndpoint.objects.filter(pk__in=judge_ids)}
        self.judge_prompts = selectors.judge_prompt_contents(configs=self.configs)
        self.results: queue.Queue[Outcome] = queue.Queue()
        self.stop = threading.Event()
        self.spent = services.spent_so_far(experiment.pk) if experiment.budget is not None else Decimal(0)
        self.ledger = Ledger(self.spent, experiment.budget)
        self.calls: list[Any] = []
        self.in_flight = 0
        self.claimed = 0
        self.called = 0

    def stopped(self) -> bool:
        return self.stop.is_set() or self.ledger.exhausted

    def _token(self) -> str:
        self.rounds += 1
        return f"{self.prefix}{self.rounds:012x}"

    def claim(self, **which) -> int:
        """Claim cells and start their calls; returns how many cells were claimed."""
        token = self._token()
        cells = _claim(self.experiment_id, token, **which)
        if not cells:
            return 0
        jobs = _prepare(cells, token, self.variants)
        self.claimed += len(cells)
        if jobs:
            self.called += len(jobs)
            self.in_flight += len(jobs)
            coroutine = _run_jobs(
                jobs, self.configs, self.judges, self.results, self.stopped, self.ledger, self.judge_prompts
            )
            self.calls.append(asyncio.run_coroutine_threadsafe(coroutine, _calls_loop()))
        return len(cells)

    def _take_arrived(self, first: Outcome) -> list[Outcome]:
        arrived = [first]
        while len(arrived) < 200:
            try:
                arrived.append(self.results.get_nowait())
            except queue.Empty:
                break
        return arrived

    def run(self, cell_ids: list[int]) -> dict[str, int]:
        self.claim(cell_ids=cell_ids)
        # Refill once a few places are free, so a finished call costs no claim query of its own.
        refill_at = max(1, self.window // 10)
        nothing_pending = False
        now = time.monotonic()
        # A task must end well within Celery's soft time limit: past this, claim nothing more, finish the calls
        # in flight, and hand the rest of the experiment to a new message.
        claim_until = now + settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
        next_check, next_renewal, next_expired = now + 1.0, now + self.lease / 4, now + self.lease / 3
        # Results are written together, at most WRITE_SECONDS after the first of them arrived.
        unwritten: list[Outcome] = []
        write_by: float | None = None
        while True:
            free = self.window - self.in_flight
            if not nothing_pending and time.monotonic() > claim_until:
                nothing_pending = True
                self._hand_over()
            if not nothing_pending and not self.stopped() and free >= (refill_at if self.in_flight else 1):
                nothing_pending = self.claim(limit=free) == 0
            if self.in_flight == 0 and (nothing_pending or self.stopped()):
                break
            try:
                outcome = self.results.get(timeout=0.25 if write_by is None else max(write_by - time.monotonic(), 0))
            except queue.Empty:
                outcome = None
                if all(call.done() for call in self.calls) and self.results.empty() and self.in_flight:
                    logger.error("experiment %s: calls ended without reporting", self.experiment_id)
                    break  # a bug: leave the claims to expire and the sweep
            if outcome is not None:
                arrived = self._take_arrived(outcome)
                self.in_flight -= len(arrived)
                unwritten.extend(arrived)
                write_by = write_by or time.monotonic() + WRITE_SECONDS
            if unwritten and (time.monotonic() >= write_by or self.in_flight == 0 or self.stop.is_set()):
                self._write(unwritten)
                unwritten, write_by = [], None
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 1.0
                status = Experiment.objects.filter(pk=self.experiment_id).values_list("status", flat=True).first()
                if status != ExperimentStatus.RUNNING:
                    self.stop.set()
            if now >= next_renewal:
                next_renewal = now + self.lease / 4
                self._renew()
            if now >= next_expired and not self.stopped() and now <= claim_until:
                # A killed worker's claims expire: take them over here rather than wait for a sweep.
                next_expired = now + self.lease / 3
                if self.claim(limit=max(1, self.window - self.in_flight), expired=True):
                    nothing_pending = False
        if unwritten:
            self._write(unwritten)
        for call in self.calls:
            try:
                call.result(timeout=30)
            except Exception:  # logged; the cells it did not report are swept once their claims expire
                logger.exception("experiment %s: the calls of a puller failed", self.experiment_id)
        _settle_after_stop(self.experiment_id, self.prefix)
        services.experiment_finish_if_done(experiment_id=self.experiment_id)
        return {"claimed": self.claimed, "called": self.called}

    def _write(self, outcomes: list[Outcome]) -> None:
        self.spent += _write(outcomes)
        if self.budget is not None and self.spent >= self.budget and not self.stop.is_set():
            self.stop.set()
            services.experiment_stop_for_budget(experiment_id=self.experiment_id, spent=self.spent)

    def _hand_over(self) -> None:
        from apps.experiments.tasks import run_batch as run_batch_task

        run_batch_task.delay(self.experiment_id, [])

    def _renew(self) -> None:
        Cell.objects.filter(
            experiment_id=self.experiment_id, status=CellStatus.RUNNING, claim_token__startswith=self.prefix
        ).update(claim_expires_at=timezone.now() + timedelta(seconds=self.lease))


def run_batch(experiment_id: int, cell_ids: list[int]) -> dict[str, int]:
    """Pull the experiment's cells, starting with `cell_ids`, until none is left to claim."""
    experiment = Experiment.objects.filter(pk=experiment_id).first()
    if experiment is None or experiment.status != ExperimentStatus.RUNNING:
        return {"claimed": 0}
    return Puller(experiment).run(cell_ids)


def _settle_after_stop(experiment_id: int, prefix: str) -> None:
    """Cells this puller still holds go back to pending (pause) or are cancelled (cancel, budget)."""
    status = Experiment.objects.filter(pk=experiment_id).values_list("status", flat=True).first()
    held = Cell.objects.filter(experiment_id=experiment_id, claim_token__startswith=prefix, status=CellStatus.RUNNING)
    if status in (ExperimentStatus.CANCELLED, ExperimentStatus.STOPPED):
        held.update(status=CellStatus.CANCELLED, claim_expires_at=None)
    else:
        held.update(status=CellStatus.PENDING, claim_token="", claim_expires_at=None, started_at=None)
