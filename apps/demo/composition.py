"""Demo data: a shared snippet, `brand-voice`, included by `welcome-email`, with a new snippet version in review."""

from __future__ import annotations

from apps.accounts.models import Project
from apps.demo.users import demo_user
from apps.prompts import services as prompt_services
from apps.prompts.content import build_content
from apps.prompts.models import Prompt
from apps.reviews import services

VOICE_V1 = "Write in {{ product }}'s voice: warm, plain words, no jargon."
VOICE_V2 = "Write in {{ product }}'s voice: warm, plain words, no jargon, and never more than you need."
WELCOME = (
    "Write a short welcome email to {{ customer_name }}, who just signed up for {{ product }}.\n"
    '{% include "brand-voice@production" %}'
)
SAMPLES = [{"name": "product", "type": "string", "sample": "Acme Cloud"},
           {"name": "customer_name", "type": "string", "sample": "Dana"}]  # fmt: skip


def _save(prompt: Prompt, template: str, message: str, actor):
    newest = prompt.versions.order_by("-number").first()
    content = build_content(kind="text", template=template, variable_specs=SAMPLES, prompt=prompt)
    return prompt_services.prompt_version_create(
        prompt=prompt, content=content, parent_number=newest.number if newest else None, message=message, actor=actor
    )


def _release(version, *, actor, reviewer, description: str) -> None:
    review = services.review_request_create(
        version=version, label_name="production", description=description, actor=actor
    )
    services.review_approve(review=review, actor=reviewer, body="Looks good.")
    services.review_release(review=review, actor=actor, expected_current_version_id=None)


def seed_demo_composition(*, project: Project, actor) -> None:
    """Idempotent: does nothing once the demo has its snippet."""
    if Prompt.objects.filter(project=project, name="brand-voice").exists():
        return
    reviewer = demo_user("reviewer")
    voice = prompt_services.prompt_create(
        project=project, name="brand-voice", description="A shared snippet: the brand's voice.", tags=["snippet"],
        actor=actor,
    )  # fmt: skip
    _release(_save(voice, VOICE_V1, "First draft", actor), actor=actor, reviewer=reviewer,
             description="The brand voice every prompt includes.")  # fmt: skip
    welcome = prompt_services.prompt_create(
        project=project, name="welcome-email", description="Welcomes a new customer; includes brand-voice.",
        tags=["email"], actor=actor,
    )  # fmt: skip
    _release(_save(welcome, WELCOME, "First draft", actor), actor=actor, reviewer=reviewer,
             description="First release.")  # fmt: skip
    # A new snippet version in review: its page lists welcome-email as a dependent that would change.
    services.review_request_create(
        version=_save(voice, VOICE_V2, "Say less", actor),
        label_name="production",
        description="Tighter wording; welcome-email re-pins to it after the release.",
        reviewer_ids=[reviewer.pk],
        actor=actor,
    )
