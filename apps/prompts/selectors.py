"""Reads of the prompt registry. Every read is scoped to a project."""

from __future__ import annotations

from django.db.models import Count, Max, Prefetch, Q, QuerySet
from django.http import Http404

from apps.accounts.models import Project
from apps.prompts.models import Label, LabelMove, Prompt, PromptVersion, Tag


def prompt_list(*, project: Project, query: str = "", tag: str = "") -> QuerySet[Prompt]:
    prompts = (
        Prompt.objects.filter(project=project)
        .annotate(version_count=Count("versions", distinct=True), newest_number=Max("versions__number"))
        .prefetch_related("tags", Prefetch("labels", queryset=Label.objects.select_related("version")))
    )
    if query:
        prompts = prompts.filter(Q(name__icontains=query) | Q(description__icontains=query))
    if tag:
        prompts = prompts.filter(tags__name=tag)
    return prompts.order_by("name")


def tag_list(*, project: Project) -> QuerySet[Tag]:
    return Tag.objects.filter(project=project, prompts__isnull=False).distinct().order_by("name")


def prompt_get(*, project: Project, name: str) -> Prompt:
    prompt = Prompt.objects.filter(project=project, name=name).first()
    if prompt is None:
        raise Http404(f"No prompt called '{name}' in this project.")
    return prompt


def version_list(*, prompt: Prompt) -> QuerySet[PromptVersion]:
    return PromptVersion.objects.filter(prompt=prompt).prefetch_related("labels").order_by("-number")


def version_newest(*, prompt: Prompt) -> PromptVersion | None:
    return PromptVersion.objects.filter(prompt=prompt).order_by("-number").first()


def version_get(*, prompt: Prompt, number: int) -> PromptVersion:
    version = PromptVersion.objects.filter(prompt=prompt, number=number).first()
    if version is None:
        raise Http404(f"{prompt.name} has no version {number}.")
    return version


def version_by_label(*, prompt: Prompt, label_name: str) -> PromptVersion | None:
    """The version a label points at; `latest` is always the newest version."""
    if label_name == "latest":
        return version_newest(prompt=prompt)
    label = Label.objects.filter(prompt=prompt, name=label_name).select_related("version").first()
    return label.version if label else None


def label_list(*, prompt: Prompt) -> QuerySet[Label]:
    return Label.objects.filter(prompt=prompt).select_related("version").order_by("name")


def label_history(*, prompt: Prompt, label_name: str = "") -> QuerySet[LabelMove]:
    moves = LabelMove.objects.filter(prompt=prompt).select_related("from_version", "to_version")
    if label_name:
        moves = moves.filter(label_name=label_name)
    return moves.order_by("-created_at", "-id")


def label_names_in_project(*, project: Project) -> list[str]:
    names = set(Label.objects.filter(prompt__project=project).values_list("name", flat=True).distinct())
    return sorted(names | {"production", "staging"})
