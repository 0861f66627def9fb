"""Demo data for the playground: a prompt with a tool declared, in two versions to compare side by side."""

from __future__ import annotations

from apps.accounts.models import Project
from apps.prompts import services
from apps.prompts.content import build_content
from apps.prompts.models import Prompt

LOOKUP_ORDER = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order by its number: its status and delivery date.",
        "parameters": {
            "type": "object",
            "properties": {"order_number": {"type": "string", "description": "The order number, e.g. A-1042"}},
            "required": ["order_number"],
        },
    },
}

ORDER_STATUS = {
    "name": "order-status",
    "description": "Answers where an order is, looking it up with a tool (try it in the playground).",
    "tags": ["support", "tools"],
    "versions": [
        (
            "First draft: look the order up",
            "You help customers of {{ product }} with their orders. Use the lookup_order tool to find an order "
            "before you answer.",
        ),
        (
            "Shorter answers with the delivery date",
            "You help customers of {{ product }} with their orders. Always call lookup_order first, then answer "
            "in one sentence that gives the delivery date.",
        ),
    ],
}


def seed_demo_playground(*, project: Project, actor) -> None:
    """Idempotent: a demo that already has the prompt keeps it as it is."""
    if Prompt.objects.filter(project=project, name=ORDER_STATUS["name"]).exists():
        return
    prompt = services.prompt_create(
        project=project,
        name=ORDER_STATUS["name"],
        description=ORDER_STATUS["description"],
        tags=ORDER_STATUS["tags"],
        actor=actor,
    )
    specs = [
        {"name": "product", "type": "string", "sample": "Acme Cloud", "description": "The product"},
        {"name": "question", "type": "string", "sample": "Where is my order A-1042?", "description": "The question"},
    ]
    parent = None
    for message, system in ORDER_STATUS["versions"]:
        content = build_content(
            kind="chat",
            messages=[{"role": "system", "content": system}, {"role": "user", "content": "{{ question }}"}],
            config={"temperature": 0, "max_tokens": 120, "tools": [LOOKUP_ORDER]},
            variable_specs=specs,
        )
        parent = services.prompt_version_create(
            prompt=prompt, content=content, parent_number=parent, message=message, actor=actor
        ).number
