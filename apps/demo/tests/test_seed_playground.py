from __future__ import annotations

from django.core.management import call_command

from apps.prompts.models import Prompt


def test_the_demo_has_a_prompt_with_a_tool_in_two_versions_once(db, settings):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    prompt = Prompt.objects.get(project__slug="demo", name="order-status")
    versions = list(prompt.versions.order_by("number"))
    assert [v.number for v in versions] == [1, 2] and versions[1].parent == versions[0]
    assert versions[1].config["tools"][0]["function"]["name"] == "lookup_order"
    assert [v["name"] for v in versions[0].variables] == ["product", "question"]
