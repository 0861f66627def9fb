"""Demo data: three days of synthetic production traffic for the demo prompts, so the traces pages are not empty.

support-reply v2 (production) and classify-ticket v1 (staging) and summarize v2
(production): a daily rhythm, a few errors, two models, and thumbs from end users
on about a fifth of the answers. Written through the ingest task's bulk writer
(no request, no worker), once: a demo that already has traces is left alone.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from django.db import transaction

from apps.accounts.models import Project
from apps.prompts.content import content_of, render_content
from apps.prompts.models import Label
from apps.traces.ingest import rows_write
from apps.traces.models import Trace
from apps.traces.records import ScoreRecord, SpanRecord, TraceRecord, text_of

DAYS = 3
TICKETS = [
    ("My invoices page has been blank since this morning.", "Sorry about that, {name}: invoices load slowly in the "
     "EU region right now. We are on it and expect a fix within the hour.", "billing"),
    ("How do I export my data to CSV?", "Hi {name}, open Settings → Export and choose CSV.", "feature request"),
    ("I was charged twice this month.", "Hi {name}, we have refunded the second charge; it shows within 3 days.",
     "billing"),
    ("The app crashes when I upload a photo.", "Sorry, {name}: version 4.2 fixes the crash, please update.", "bug"),
    ("Can I add a second admin to my account?", "Yes, {name}: Settings → Members → Invite, with the admin role.",
     "feature request"),
    ("The reset mail never arrives.", "Hi {name}, check the spam folder; we have sent you a new reset link.", "bug"),
]  # fmt: skip
NAMES = ["Dana", "Lee", "Ana", "Sam", "Kim", "Noor", "Jo", "Ravi", "Mia", "Tom"]
PRODUCTS = ["Acme Cloud", "Acme Billing", "Acme Shop"]
DOCUMENT = (
    "Prompt Studio keeps every version of a prompt, tests versions against datasets and models, "
    "gets them reviewed, and serves the released one to apps, which report back what it did."
)
MODELS = [("gpt-4o-mini", "openai", 0.15, 0.60), ("claude-3-5-haiku", "anthropic", 0.80, 4.00)]


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _generation(rng, trace_id, parent, start, version, label, variables, output, *, error=False) -> SpanRecord:
    model, provider, price_in, price_out = MODELS[0] if rng.random() < 0.8 else MODELS[1]
    rendered = render_content(content_of(version), variables)
    input_tokens = max(8, len(text_of(rendered)) // 4)
    output_tokens = 0 if error else max(3, len(output) // 4)
    latency_ms = rng.lognormvariate(6.6, 0.45) * (1.6 if model.startswith("claude") else 1.0)
    return SpanRecord(
        trace_id=trace_id,
        span_id=uuid.uuid4().hex[:16],
        parent_span_id=parent,
        name=f"chat {model}",
        kind="generation",
        start_us=_us(start),
        end_us=_us(start + timedelta(milliseconds=latency_ms)),
        error=error,
        status_message="429 rate limited by the provider" if error else "",
        provider=provider,
        model=model,
        operation="chat",
        input=rendered if isinstance(rendered, list) else [{"role": "user", "content": rendered}],
        output=None if error else output,
        input_text=text_of(rendered),
        output_text="" if error else output,
        variables=variables,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=f"{(input_tokens * price_in + output_tokens * price_out) / 1e6:.8f}",
        prompt_name=version.prompt.name,
        prompt_version=version.number,
        prompt_label=label,
    )


def _traffic(project: Project, now: datetime) -> tuple[list[SpanRecord], list[TraceRecord], list[ScoreRecord]]:
    rng = random.Random(13)  # noqa: S311 - demo data, reproducible
    labels = {
        (label.prompt.name, label.name): label.version
        for label in Label.objects.filter(prompt__project=project).select_related("version__prompt", "prompt")
    }
    spans: list[SpanRecord] = []
    traces: list[TraceRecord] = []
    scores: list[ScoreRecord] = []
    start_hour = (now - timedelta(days=DAYS)).replace(minute=0, second=0, microsecond=0)
    for hour in range(DAYS * 24):
        moment = start_hour + timedelta(hours=hour)
        busy = 1.0 + 0.8 * (8 <= moment.hour <= 18)  # office hours
        for prompt_name, label, rate in (("support-reply", "production", 4), ("classify-ticket", "staging", 2),
                                         ("summarize", "production", 1)):  # fmt: skip
            version = labels.get((prompt_name, label))
            if version is None:
                continue
            for _ in range(rng.randint(0, int(rate * busy * 2))):
                start = moment + timedelta(seconds=rng.uniform(0, 3599))
                if start > now:
                    continue
                trace_id = uuid.uuid4().hex
                user = f"user-{rng.randint(1, 60)}"
                ticket, answer, category = rng.choice(TICKETS)
                name = rng.choice(NAMES)
                error = rng.random() < 0.03
                if prompt_name == "support-reply":
                    variables = {"product": rng.choice(PRODUCTS), "customer_name": name, "ticket": ticket,
                                 "known_issues": []}  # fmt: skip
                    output = answer.format(name=name)
                elif prompt_name == "classify-ticket":
                    variables = {"ticket": ticket, "categories": ["billing", "bug", "feature request"]}
                    output = f'{{"category": "{category}"}}'
                else:
                    variables = {"document": DOCUMENT, "max_words": 30}
                    output = "Prompt Studio versions, tests, reviews and serves prompts, and hears back from apps."
                root = uuid.uuid4().hex[:16]
                gen = _generation(rng, trace_id, root, start + timedelta(milliseconds=15), version, label,
                                  variables, output, error=error)  # fmt: skip
                spans.append(gen)
                spans.append(
                    SpanRecord(
                        trace_id=trace_id,
                        span_id=root,
                        name=f"POST /{prompt_name}",
                        start_us=_us(start),
                        end_us=gen.end_us + 20_000,
                        error=error,
                    )  # fmt: skip
                )
                traces.append(TraceRecord(trace_id=trace_id, name=f"{prompt_name} request", user_id=user,
                                          session_id=f"s-{user}-{moment:%m%d}", environment="production"))  # fmt: skip
                if not error and rng.random() < 0.2:
                    good = rng.random() < (0.8 if prompt_name != "summarize" else 0.6)
                    scores.append(
                        ScoreRecord(
                            score_id=uuid.uuid4().hex,
                            trace_id=trace_id,
                            span_id=gen.span_id,
                            name="thumbs",
                            data_type="boolean",
                            value=1.0 if good else 0.0,
                            end_user_id=user,
                            comment="" if good else rng.choice(["Too long", "Wrong answer", "Not helpful"]),
                            source="feedback",
                            created_us=gen.end_us + 30_000_000,
                        )  # fmt: skip
                    )
    return spans, traces, scores


def seed_demo_traces(*, project: Project, actor=None) -> int:
    """Seed the demo project's production traffic once; the number of traces written (0 when already there)."""
    if Trace.objects.filter(project=project).exists():
        return 0
    spans, traces, scores = _traffic(project, datetime.now(UTC))
    with transaction.atomic():
        rows_write(project_id=project.pk, spans=spans, traces=traces, scores=scores)
    return len(traces)
