"""Demo data: a finished A/B experiment of support-reply (v2 in production against the v3 under review),
rated blind by three demo raters, linked as evidence to the open review, with thresholds on production.

No model is called: the outputs are written by `seeding.finished_experiment` from the templates below.
"""

from __future__ import annotations

from apps.accounts.models import Membership, Project, Role
from apps.datasets import services as dataset_services
from apps.demo.users import demo_user
from apps.experiments import services as experiment_services
from apps.experiments.models import Experiment
from apps.prompts.models import Prompt
from apps.providers.models import EndpointKind, ModelEndpoint
from apps.providers.services import endpoint_create
from apps.ratings import selectors, services
from apps.ratings.seeding import SeedVariant, finished_experiment
from apps.reviews.models import ReleasePolicy, ReviewRequest, ReviewStatus

EXPERIMENT_NAME = "support-reply: production v2 vs candidate v3"
RATERS = ("rater1", "rater2", "rater3")
NAMES = ["Dana", "Lee", "Ana", "Sam", "Kim", "Noor", "Jo", "Ravi", "Mia", "Tom"]
PRODUCTS = ["Acme Cloud", "Acme Billing", "Acme Shop", "Acme Mobile"]
PROBLEMS = [
    ("My invoices page has been blank since this morning.", "invoices load slowly in the EU region right now"),
    ("How do I export my data to CSV?", "open Settings → Export and choose CSV"),
    ("I was charged twice this month.", "we have refunded the second charge; it shows within 3 days"),
    ("Where is my order?", "it ships tomorrow and the tracking link is in your mail"),
    ("The app crashes when I upload a photo.", "version 4.2 fixes the crash, please update"),
    ("Can I add a second admin to my account?", "yes: Settings → Members → Invite, with the admin role"),
    ("The reset mail never arrives.", "check the spam folder; we have sent a new reset link"),
    ("Can I pay by bank transfer?", "yes, choose 'Invoice' at checkout and pay within 30 days"),
]
ROWS = 40
EVIDENCE_RULES = {"required": True, "min_win_rate": 0.5, "max_p_value": 0.05, "min_mean_rating": 4.0, "min_ratings": 30}


def _records() -> list[dict]:
    records = []
    for i in range(ROWS):
        ticket, answer = PROBLEMS[i % len(PROBLEMS)]
        name, product = NAMES[i % len(NAMES)], PRODUCTS[i % len(PRODUCTS)]
        records.append(
            {
                "input": {
                    "ticket": ticket,
                    "customer_name": name,
                    "product": product,
                    "known_issues": ["Invoices load slowly in the EU region"],
                },
                "expected": f"Sorry for the trouble, {name}: {answer}.",
                "metadata": {"source": "demo", "split": "test"},
            }
        )
    return records


def _output(variant: str, position: int, repeat: int, item) -> str:
    name, ticket = item.input["customer_name"], item.input["ticket"]
    answer = PROBLEMS[position % len(PROBLEMS)][1]
    if variant == "A":
        if position % 4 == 0:
            product = item.input["product"]
            return f"Thank you for contacting {product} support. We received: “{ticket}” We will look into it."
        return f"Thank you for contacting us. Regarding your question, {answer}. Let us know if you need anything else."
    if position % 6 == 5:
        return f"Hi {name}, thanks for writing. We are checking this and will answer today."
    return f"Sorry for the trouble, {name}! {answer[0].upper()}{answer[1:]}."


def _score(evaluator: str, variant: str, position: int, output: str, item) -> tuple[float, bool, str]:
    name = item.input["customer_name"]
    if evaluator == "names the customer":
        found = name in output
        return (1.0 if found else 0.0), found, "the customer's name is in the reply" if found else "no name"
    answered = PROBLEMS[position % len(PROBLEMS)][1][:12].lower() in output.lower()
    value = (0.9 if answered else 0.3) if variant == "B" else (0.8 if answered else 0.2)
    return value, value >= 0.5, "answers the question" if answered else "does not answer yet"


def _choice(rater_index: int, position: int) -> str:
    """Which variant a demo rater prefers: mostly B, some A and ties, and raters sometimes disagree."""
    base = {0: "B", 1: "B", 2: "A", 3: "B", 4: "tie"}[position % 5]
    if position % 6 == 5:
        base = "A"  # B's holding reply on these rows is worse
    if (position * 3 + rater_index) % 7 == 0:
        return {"A": "B", "B": "tie", "tie": "A"}[base]
    return base


def _rating(variant: str, rater_index: int, position: int) -> int:
    if variant == "B":
        return 2 if position % 6 == 5 else (5 if (position + rater_index) % 3 else 4)
    if position % 4 == 0:
        return 2 if rater_index else 3  # the form letter
    return 3 if (position // 2 + rater_index) % 3 == 0 else 4


def _endpoint(project: Project, actor):
    endpoint = ModelEndpoint.objects.filter(project=project).order_by("id").first()
    if endpoint is None:
        endpoint = endpoint_create(
            project=project, actor="seed_demo", name="Offline demo", kind=EndpointKind.REMOTE,
            model="openai/offline-demo", api_base="http://127.0.0.1:9/v1",
        )  # fmt: skip
    return endpoint


def seed_demo_ratings(*, project: Project, actor) -> Experiment | None:
    """Idempotent: does nothing when the demo experiment exists."""
    if Experiment.objects.filter(project=project, name=EXPERIMENT_NAME).exists():
        return None
    prompt = Prompt.objects.filter(project=project, name="support-reply").first()
    if prompt is None:
        return None
    raters = [demo_user(name) for name in RATERS]
    for rater in raters:
        Membership.objects.get_or_create(project=project, user=rater, defaults={"role": Role.EDITOR})
    dataset = dataset_services.dataset_create(
        project=project, name="support-tickets-rated", description="40 tickets the demo raters judged.", actor=actor
    )
    version = dataset_services.dataset_version_create_from_records(
        dataset=dataset, records=_records(), message="Tickets for the A/B test", actor=actor
    )
    endpoint = _endpoint(project, actor)
    experiment = finished_experiment(
        project=project,
        actor=actor,
        name=EXPERIMENT_NAME,
        dataset_version=version,
        variants=[
            SeedVariant("A", prompt.versions.get(number=2), endpoint),
            SeedVariant("B", prompt.versions.get(number=3), endpoint),
        ],
        output=_output,
        evaluators=[
            experiment_services.EvaluatorSpec("names the customer", "contains", {"value": "{customer_name}"}),
            experiment_services.EvaluatorSpec("judge", "llm_judge", {"endpoint_id": endpoint.pk, "rubric": "Helpful?"}),
        ],
        score=_score,
    )
    services.rating_form_save(
        experiment=experiment,
        definition={"thumbs": True, "scale": {"min": 1, "max": 5}, "criteria": ["accuracy", "tone"], "comment": True},
        actor=actor,
    )
    variant_ids = list(experiment.variants.values_list("pk", flat=True))
    queue = services.queue_create(
        experiment=experiment, name="Blind review: support replies", kind="pairwise", variant_ids=variant_ids,
        raters_per_item=3, rater_ids=[r.pk for r in raters], actor=actor,
    )  # fmt: skip
    for index, rater in enumerate(raters):
        while (assignment := selectors.next_assignment(queue=queue, rater=rater)) is not None:
            winner = _choice(index, assignment.item.position)
            if winner == "tie":
                choice = "tie"
            else:
                choice = "left" if assignment.left_cell.variant.name == winner else "right"
            services.judgement_submit(queue=queue, token=assignment.token, rater=rater, choice=choice)
        for cell in experiment.cells.filter(position__lt=24).select_related("variant"):
            if (cell.position + index) % 2 == 0:
                score = _rating(cell.variant.name, index, cell.position)
                services.rating_submit(
                    cell=cell, rater=rater,
                    data={"score": str(score), "thumb": "up" if score >= 4 else "down",
                          "criterion:accuracy": str(score), "criterion:tone": str(min(5, score + 1))},
                )  # fmt: skip
    # Your turn: the demo user's own blind queue, so the verdict moves as you judge.
    services.queue_create(
        experiment=experiment, name="Your blind review", kind="pairwise", variant_ids=variant_ids,
        raters_per_item=1, rater_ids=[actor.pk], actor=actor,
    )  # fmt: skip
    review = ReviewRequest.objects.filter(prompt=prompt, version__number=3, status=ReviewStatus.OPEN).first()
    if review is not None:
        services.experiment_link_create(review=review, experiment=experiment, actor=actor)
    policy = ReleasePolicy.objects.filter(project=project, label_name="production").first()
    if policy is not None:
        services.evidence_rules_save(policy=policy, rules=EVIDENCE_RULES, actor=actor)
    return experiment
