"""Demo data: one small dataset whose rows fit the demo prompts' variables (support-reply)."""

from __future__ import annotations

from apps.accounts.models import Project
from apps.datasets import selectors, services

KNOWN_ISSUES = ["Invoices load slowly in the EU region"]
TICKETS = [
    ("Dana", "Acme Cloud", "My invoices page has been blank since this morning.",
     "Sorry about that, Dana! Invoices are slow in the EU right now; we expect a fix within the hour.", "test"),
    ("Lee", "Acme Cloud", "How do I export my data to CSV?",
     "Open Settings → Export and choose CSV, Lee.", "train"),
    ("Ana", "Acme Billing", "I was charged twice this month.",
     "We have refunded the second charge, Ana; it shows within 3 days.", "train"),
    ("Sam", "Acme Shop", "Where is my order? Mail me at sam@example.com.",
     "It ships tomorrow, Sam; we sent the tracking link by e-mail.", "test"),
    ("Kim", "Acme Mobile", "The app crashes when I upload a photo.",
     "Please update to version 4.2, which fixes the crash, Kim.", "train"),
    ("Noor", "Acme Cloud", "Can I add a second admin to my account?",
     "Yes, Noor: Settings → Members → Invite, and choose the admin role.", "validation"),
]  # fmt: skip


def seed_demo_datasets(*, project: Project, actor) -> None:
    """Idempotent: does nothing when the demo dataset exists."""
    if selectors.dataset_by_name(project=project, name="support-tickets") is not None:
        return
    dataset = services.dataset_create(
        project=project,
        name="support-tickets",
        description="Real-looking support tickets for the support-reply prompt (ticket, customer_name, product).",
        actor=actor,
    )
    records = [
        {
            "input": {"ticket": ticket, "customer_name": name, "product": product, "known_issues": KNOWN_ISSUES},
            "expected": expected,
            "metadata": {"split": split, "source": "demo"},
        }
        for name, product, ticket, expected, split in TICKETS
    ]
    first = services.dataset_version_create_from_records(
        dataset=dataset, records=records, message="Imported the first support tickets", actor=actor
    )
    services.dataset_version_edit(
        version=first,
        actor=actor,
        message="Add a ticket about password resets",
        append=[
            {
                "input": {
                    "ticket": "I forgot my password and the reset mail never arrives.",
                    "customer_name": "Jo",
                    "product": "Acme Cloud",
                    "known_issues": KNOWN_ISSUES,
                },
                "expected": "Sorry, Jo! Check your spam folder; we have sent a new reset link.",
                "metadata": {"split": "test", "source": "demo"},
            }
        ],
    )
