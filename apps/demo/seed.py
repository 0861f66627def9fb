"""The demo project, seeded step by step: each app's demo data in dependency order.

A new app's demo data plugs in with one line in DEMO_STEPS: a function `seed_demo_<app>(*, project, actor)`
in `apps/demo/<app>.py` that is idempotent (it looks for its own rows first), because `seed_demo` runs on
every `make run` and also adds new steps' data to a demo seeded before they existed.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from apps.accounts.models import Membership, Project, Role
from apps.accounts.services import project_create
from apps.demo import (
    composition,
    datasets,
    monitoring,
    playground,
    probes,
    prompts,
    providers,
    ratings,
    reviews,
    traces,
)
from apps.demo.users import demo_user

DemoStep = Callable[..., object]

DEMO_STEPS: list[DemoStep] = [
    prompts.seed_demo_prompts,
    reviews.seed_demo_reviews,
    composition.seed_demo_composition,
    datasets.seed_demo_datasets,
    providers.seed_demo_endpoints,
    ratings.seed_demo_ratings,
    traces.seed_demo_traces,
    probes.seed_demo_probes,
    monitoring.seed_demo_monitoring,
    monitoring.seed_demo_online_evaluation,
    playground.seed_demo_playground,
]


def demo_project() -> tuple[Project, bool]:
    """The demo project with its admin, reviewer and viewer; True when it was made now."""
    demo, reviewer, viewer = demo_user(settings.DEMO_USERNAME), demo_user("reviewer"), demo_user("viewer")
    project = Project.objects.filter(slug="demo").first()
    if project is not None:
        return project, False
    project = project_create(name="Demo", slug="demo", creator=demo, description="A living example project.")
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)
    return project, True


def seed_demo() -> bool:
    """Make the demo project if it is missing and run every step on it; True when the project was made now."""
    project, created = demo_project()
    actor = demo_user(settings.DEMO_USERNAME)
    for step in DEMO_STEPS:
        step(project=project, actor=actor)
    return created
