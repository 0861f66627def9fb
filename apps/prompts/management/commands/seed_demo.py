"""Seed the demo project (idempotent). Only on a development setup: DEBUG must be on."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings

from apps.accounts.models import Membership, Project, Role
from apps.accounts.services import project_create
from apps.prompts import services
from apps.prompts.content import build_content
from apps.prompts.models import Prompt

DEMO_PROMPTS = [
    {
        "name": "support-reply",
        "description": "Replies to a customer support ticket in the brand's voice.",
        "tags": ["support", "chat"],
        "versions": [
            {
                "message": "First draft",
                "kind": "chat",
                "messages": [
                    {"role": "system", "content": "You are a helpful support agent for {{ product }}."},
                    {"role": "user", "content": "{{ ticket }}"},
                ],
                "config": {"temperature": 0.7, "max_tokens": 300},
            },
            {
                "message": "Be concise and name the customer",
                "kind": "chat",
                "messages": [
                    {
                        "role": "system",
                        "content": "You are a concise, friendly support agent for {{ product }}. "
                        "Answer in at most three sentences.",
                    },
                    {"role": "user", "content": "Customer {{ customer_name }} writes:\n{{ ticket }}"},
                ],
                "config": {"temperature": 0.4, "max_tokens": 200},
            },
            {
                "message": "Add known issues as context",
                "kind": "chat",
                "messages": [
                    {
                        "role": "system",
                        "content": "You are a concise, friendly support agent for {{ product }}. "
                        "Answer in at most three sentences.\n"
                        "{% if known_issues %}Known issues:\n{% for issue in known_issues %}- {{ issue }}\n{% endfor %}"
                        "{% endif %}",
                    },
                    {"role": "user", "content": "Customer {{ customer_name }} writes:\n{{ ticket }}"},
                ],
                "config": {"temperature": 0.3, "max_tokens": 200},
            },
        ],
        "labels": {"production": 2, "staging": 3},
    },
    {
        "name": "summarize",
        "description": "Summarizes a document for a busy reader.",
        "tags": ["text"],
        "versions": [
            {"message": "First draft", "kind": "text", "template": "Summarize this:\n\n{{ document }}"},
            {
                "message": "Bound the length",
                "kind": "text",
                "template": "Summarize the document below in at most {{ max_words }} words.\n\n{{ document }}",
                "config": {"temperature": 0.2, "max_tokens": 256},
            },
        ],
        "labels": {"production": 2},
    },
    {
        "name": "classify-ticket",
        "description": "Sorts a ticket into one of the team's categories, answering JSON.",
        "tags": ["support", "json"],
        "versions": [
            {
                "message": "First draft",
                "kind": "text",
                "template": "Classify the ticket into one of: {{ categories | join(', ') }}.\n"
                'Answer as JSON: {"category": "..."}\n\nTicket: {{ ticket }}',
                "config": {"temperature": 0, "response_format": "json_object"},
            },
        ],
        "labels": {"staging": 1},
    },
]

SAMPLES = {
    "product": ("string", "Acme Cloud", "The product the customer uses"),
    "ticket": ("string", "My invoices page has been blank since this morning.", "The ticket text"),
    "customer_name": ("string", "Dana", "The customer's first name"),
    "known_issues": ("list", ["Invoices load slowly in the EU region"], "Incidents open right now"),
    "document": ("string", "Prompt Studio keeps every version of a prompt and serves the released one.", ""),
    "max_words": ("number", 30, "Upper bound on the summary's length"),
    "categories": ("list", ["billing", "bug", "feature request"], "Allowed categories"),
}


class Command(BaseCommand):
    help = "Create the demo project, its users, prompts, versions and labels (idempotent; DEBUG only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo only runs with DEBUG on: a production studio never has the demo login.")
        # The seed's review emails would flood the console of `make run`; keep them in memory.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"), transaction.atomic():
            created = self._seed()
            self._seed_model_endpoints()
            self._seed_ratings()
            from apps.traces.demo import seed_demo_traffic  # the traces app's demo data (lazily: a higher app)

            seed_demo_traffic()
        if created:
            self.stdout.write(self.style.SUCCESS("Demo project created."))
        else:
            self.stdout.write("Demo project already present; nothing changed.")
        self.stdout.write(f"Log in as {settings.DEMO_USERNAME} / {settings.DEMO_PASSWORD} (admin)")
        self.stdout.write(f"       or reviewer / {settings.DEMO_PASSWORD} (reviewer)")
        self.stdout.write(
            f"       or rater1, rater2, rater3 / {settings.DEMO_PASSWORD} (editors who rated the A/B test)"
        )

    def _seed_model_endpoints(self) -> None:
        """The local models as the demo's endpoints (added to an existing demo too): the chat model, and the
        completion model while LOCAL_MODEL_COMPLETION turns it on. No simulated endpoint is seeded: the test
        server runs only inside tests and benchmarks, so it would point at nothing."""
        from apps.providers import local_models
        from apps.providers.models import EndpointKind, EndpointMode, ModelEndpoint
        from apps.providers.services import endpoint_create, local_endpoint_ensure

        project = Project.objects.filter(slug="demo").first()
        if project is None:
            return
        local_chat = ModelEndpoint.objects.filter(project=project, kind=EndpointKind.LOCAL, mode=EndpointMode.CHAT)
        if not local_chat.exists():
            endpoint_create(
                project=project,
                actor="seed_demo",
                name=local_models.DEFAULT_MODEL.endpoint_name,
                kind=EndpointKind.LOCAL,
                mode=local_models.DEFAULT_MODEL.mode,
                model=f"openai/{local_models.model_alias()}",
                api_base=local_models.api_base(),
                timeout_seconds=180,
                max_retries=1,
                max_concurrency=1,
                price_input_per_mtok=0,
                price_output_per_mtok=0,
            )
        completion = local_models.completion_model()
        if completion is not None:
            local_endpoint_ensure(project=project, spec=completion, actor="seed_demo")

    def _seed_ratings(self) -> None:
        """A finished, rated A/B experiment linked to the open review (added to an existing demo too)."""
        # Demo data of a higher app, imported lazily: the prompts app itself does not depend on ratings.
        from django.apps import apps

        project = Project.objects.filter(slug="demo").first()
        if project is None or not apps.is_installed("apps.ratings"):
            return
        from apps.ratings.demo import seed_demo_ratings

        seed_demo_ratings(project=project, actor=self._user(settings.DEMO_USERNAME))

    def _user(self, username: str):
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        if created:
            user.set_password(settings.DEMO_PASSWORD)
            user.save(update_fields=["password"])
        return user

    def _seed(self) -> bool:
        demo, reviewer, viewer = self._user(settings.DEMO_USERNAME), self._user("reviewer"), self._user("viewer")
        project = Project.objects.filter(slug="demo").first()
        if project is not None:
            return False
        project = project_create(name="Demo", slug="demo", creator=demo, description="A living example project.")
        Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
        Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)
        for spec in DEMO_PROMPTS:
            prompt = services.prompt_create(
                project=project, name=spec["name"], description=spec["description"], tags=spec["tags"], actor=demo
            )
            self._versions(prompt, spec, demo)
        self._reviews(project, demo, reviewer)
        self._datasets(project, demo)
        return True

    def _reviews(self, project: Project, demo, reviewer) -> None:
        """Protect `production`, release the seeded production versions through reviews, open one more review."""
        # Demo data of a higher app, imported lazily: the prompts app itself does not depend on reviews.
        from apps.reviews import services as review_services

        review_services.policy_save(
            project=project,
            label_name="production",
            protected=True,
            required_approvals=1,
            approver_roles=[Role.REVIEWER, Role.ADMIN],
            actor=demo,
        )
        for spec in DEMO_PROMPTS:
            number = spec["labels"].get("production")
            if number is None:
                continue
            prompt = Prompt.objects.get(project=project, name=spec["name"])
            review = review_services.review_request_create(
                version=prompt.versions.get(number=number),
                label_name="production",
                description="First release of the demo.",
                actor=demo,
            )
            review_services.review_approve(review=review, actor=reviewer, body="Looks good.")
            review_services.review_release(review=review, actor=demo, expected_current_version_id=None)
        prompt = Prompt.objects.get(project=project, name="support-reply")
        review_services.review_request_create(
            version=prompt.versions.get(number=3),
            label_name="production",
            description="Adds the open known issues to the system prompt, so answers mention incidents.",
            reviewer_ids=[reviewer.pk],
            actor=demo,
        )

    def _datasets(self, project: Project, actor) -> None:
        # Demo data of a higher app, imported lazily: the prompts app itself does not depend on datasets.
        from django.apps import apps

        if apps.is_installed("apps.datasets"):
            from apps.datasets.demo import seed_demo_datasets

            seed_demo_datasets(project=project, actor=actor)

    def _versions(self, prompt: Prompt, spec: dict, actor) -> None:
        versions = {}
        parent = None
        for number, data in enumerate(spec["versions"], start=1):
            content = build_content(
                kind=data["kind"],
                template=data.get("template", ""),
                messages=data.get("messages"),
                config=data.get("config", {}),
                variable_specs=[
                    {"name": name, "type": kind, "sample": sample, "description": text}
                    for name, (kind, sample, text) in SAMPLES.items()
                ],
            )
            version = services.prompt_version_create(
                prompt=prompt, content=content, parent_number=parent, message=data["message"], actor=actor
            )
            versions[number] = version
            parent = version.number
        for label, number in spec["labels"].items():
            if label == "production":
                continue  # protected: released through a review in _reviews()
            services.label_move(
                prompt=prompt, label_name=label, version=versions[number], actor=actor, reason="Seeded by the demo"
            )
