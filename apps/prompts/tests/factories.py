import factory

from apps.accounts.tests.factories import ProjectFactory, UserFactory
from apps.prompts import services
from apps.prompts.content import build_content
from apps.prompts.models import Prompt


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"prompt-{n}")


def make_version(
    prompt,
    template="Hello {{ name }}",
    *,
    actor=None,
    message="",
    kind="text",
    messages=None,
    config=None,
    samples=None,
):
    """Save a version through the real service, on top of the newest one."""
    newest = prompt.versions.order_by("-number").first()
    content = build_content(
        kind=kind,
        template=template if kind == "text" else "",
        messages=messages,
        config=config or {},
        variable_specs=[{"name": k, "sample": v, "type": _kind(v)} for k, v in (samples or {}).items()],
        prompt=prompt,
    )
    return services.prompt_version_create(
        prompt=prompt,
        content=content,
        parent_number=newest.number if newest else None,
        message=message,
        actor=actor or UserFactory(),
    )


def _kind(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "string"
