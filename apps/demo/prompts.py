"""Demo data: three prompts with their versions, sample values and labels (production is released by reviews)."""

from __future__ import annotations

from apps.accounts.models import Project
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


def seed_demo_prompts(*, project: Project, actor) -> None:
    """Idempotent: a prompt the demo already has is left as it is."""
    for spec in DEMO_PROMPTS:
        if Prompt.objects.filter(project=project, name=spec["name"]).exists():
            continue
        prompt = services.prompt_create(
            project=project, name=spec["name"], description=spec["description"], tags=spec["tags"], actor=actor
        )
        _versions(prompt, spec, actor)


def released_versions() -> dict[str, int]:
    """The version number of each demo prompt that the reviews step releases to production."""
    return {spec["name"]: spec["labels"]["production"] for spec in DEMO_PROMPTS if "production" in spec["labels"]}


def _versions(prompt: Prompt, spec: dict, actor) -> None:
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
            prompt=prompt,
        )
        version = services.prompt_version_create(
            prompt=prompt, content=content, parent_number=parent, message=data["message"], actor=actor
        )
        versions[number] = version
        parent = version.number
    for label, number in spec["labels"].items():
        if label == "production":
            continue  # protected: released through a review in apps/demo/reviews.py
        services.label_move(
            prompt=prompt, label_name=label, version=versions[number], actor=actor, reason="Seeded by the demo"
        )
