"""Playground calls pass the gateway's single door: they wait for the endpoint's shared slot.

"Another process" holding a slot is a second limiter backend made like the one every process makes
(its own lock files on the embedded default, the same Redis or database otherwise).
"""

from __future__ import annotations

import pytest

from apps.playground import services as playground_services
from apps.prompts.content import content_of
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.providers.gateway import limits
from apps.providers.models import ResultStatus
from apps.providers.tests.test_limits import hold_slot_elsewhere

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_limiter():
    limits.reset_limiter()
    yield
    limits.reset_limiter()


def test_a_playground_call_waits_for_the_slot_another_process_holds(project, editor, simulated_endpoint, sim_server):
    endpoint = simulated_endpoint(max_concurrency=1)
    version = make_version(PromptFactory(project=project), "Say {{ word }}", actor=editor, samples={"word": "hi"})
    run = playground_services.playground_run_create(
        project=project, actor=editor, content=content_of(version), variables={"word": "hi"}, endpoints=[endpoint]
    )
    holder, released = hold_slot_elsewhere(endpoint, 1.0)
    result = playground_services.playground_result_execute(result_id=run.results.get().pk)
    holder.join()
    assert result.status == ResultStatus.DONE
    (request,) = sim_server.requests("/chat/completions")
    assert request.at >= released[0]  # sent only once the other process gave the slot back
