"""The playground: a form from the version's variables, runs on the interactive queue, outputs side by side."""

from __future__ import annotations

from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse

from apps.accounts.tests.factories import ProjectFactory
from apps.playground import services as playground_services
from apps.playground.models import PlaygroundResult, PlaygroundRun
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.providers import local_models, services
from apps.providers.models import EndpointKind, ResultStatus

SUPPORT = [
    {"role": "system", "content": "You support {{ product }}."},
    {"role": "user", "content": "{{ customer }} asks: {{ question }} ({{ tries }} tries)"},
]


@pytest.fixture
def support(project, editor):
    prompt = PromptFactory(project=project, name="support")
    make_version(
        prompt,
        kind="chat",
        messages=SUPPORT,
        samples={"product": "Acme", "customer": "Dana", "question": "Where is my invoice?", "tries": 2},
        config={"temperature": 0.2, "max_tokens": 50},
        actor=editor,
    )
    return prompt


def run_form(chosen, **values) -> dict:
    form = {
        "prompt": "support",
        "version": "1",
        "intent": "run",
        "msg_count": "2",
        "msg-0-role": "system",
        "msg-0-content": SUPPORT[0]["content"],
        "msg-1-role": "user",
        "msg-1-content": SUPPORT[1]["content"],
        "var-product": "Acme",
        "var-customer": "Dana",
        "var-question": "Where is my invoice?",
        "var-tries": "2",
        "endpoints": [e.pk for e in chosen],
    }
    form.update(values)
    return form


def test_it_builds_the_form_from_the_versions_variables(project, editor, client_for, support, simulated_endpoint):
    simulated_endpoint()
    page = client_for(editor).get(reverse("playground:playground", args=[project.slug]) + "?prompt=support")
    html = page.content.decode()
    assert page.status_code == 200
    for name in ("product", "customer", "question", "tries"):
        assert f'name="var-{name}"' in html
    assert "Where is my invoice?" in html and "number" in html
    assert "simulated" in html


def test_it_saves_a_run_and_enqueues_one_result_per_endpoint_on_commit(
    project, editor, client_for, support, simulated_endpoint, django_capture_on_commit_callbacks
):
    echo, upper = simulated_endpoint("Echo"), simulated_endpoint("Upper", "openai/upper")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(editor).post(
            reverse("playground:playground", args=[project.slug]), run_form([echo, upper])
        )
    run = PlaygroundRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/playground/runs/{run.pk}/")
    assert len(callbacks) == 2
    assert run.version == support.versions.get() and run.created_by == editor
    assert run.variables == {"product": "Acme", "customer": "Dana", "question": "Where is my invoice?", "tries": 2}
    result = run.results.get(endpoint=upper)
    assert result.status == ResultStatus.QUEUED
    assert result.request["messages"][1]["content"] == "Dana asks: Where is my invoice? (2 tries)"
    assert result.request["temperature"] == 0.2 and result.request["max_tokens"] == 50


def test_it_runs_a_result_once_and_records_everything(project, editor, support, simulated_endpoint, sim_server):
    endpoint = simulated_endpoint("Upper", "openai/upper", price_input_per_mtok=2, price_output_per_mtok=2)
    run = playground_services.playground_run_create(
        project=project,
        actor=editor,
        content=__import__("apps.prompts.content", fromlist=["content_of"]).content_of(support.versions.get()),
        variables={"product": "Acme", "customer": "Dana", "question": "hi", "tries": 1},
        endpoints=[endpoint],
    )
    result_id = run.results.get().pk
    result = playground_services.playground_result_execute(result_id=result_id)
    assert result.status == ResultStatus.DONE
    assert result.output == "DANA ASKS: HI (1 TRIES)"
    # "You support Acme." is 3 words + 1, "Dana asks: hi (1 tries)" 5 + 1 (the simulated server's rule)
    assert (result.tokens_in, result.tokens_out, result.finish_reason) == (10, 5, "stop")
    assert result.cost == Decimal(15 * 2) / 1_000_000
    assert result.latency_ms is not None and result.provider_request_id.startswith("req-sim-")
    # A second delivery of the same task changes nothing and calls nobody.
    assert playground_services.playground_result_execute(result_id=result_id) is None
    assert len(sim_server.requests()) == 1


def test_it_records_a_provider_failure_in_plain_words(project, editor, support, simulated_endpoint, sim_server):
    sim_server.configure(api_key="sk-only-this-key-works-0000")
    endpoint = simulated_endpoint(api_key="sk-wrong-key-for-this-server")
    run = playground_services.playground_run_create(
        project=project, actor=editor, content=_content(support), variables=_values(), endpoints=[endpoint]
    )
    result = playground_services.playground_result_execute(result_id=run.results.get().pk)
    assert result.status == ResultStatus.FAILED
    assert result.error_kind == "auth" and "refused the API key" in result.error_message


def test_it_fails_a_local_model_that_is_still_installing_with_its_progress(
    project, editor, support, settings, tmp_path
):
    settings.LOCAL_MODELS_DIR = tmp_path
    local_models.write_status("installing", step="downloading model part 3 of 6", progress=70)
    endpoint = services.endpoint_create(
        project=project, actor=editor, name="Local", kind=EndpointKind.LOCAL, model="openai/qwen",
        api_base="http://127.0.0.1:9/v1",
    )  # fmt: skip
    run = playground_services.playground_run_create(
        project=project, actor=editor, content=_content(support), variables=_values(), endpoints=[endpoint]
    )
    result = playground_services.playground_result_execute(result_id=run.results.get().pk)
    assert result.status == ResultStatus.FAILED
    assert "still installing (70%): downloading model part 3 of 6" in result.error_message


def test_it_fails_a_text_prompt_on_the_completion_model_with_that_models_own_progress(
    project, editor, settings, tmp_path
):
    settings.LOCAL_MODELS_DIR, settings.LOCAL_MODEL_COMPLETION = tmp_path, "gemma-3-270m"
    local_models.write_status("ready", step="serving")  # the chat model is up; the completion model is not
    local_models.write_status(
        "installing", spec=local_models.GEMMA_3_270M, step="downloading model part 2 of 4", progress=75
    )
    prompt = PromptFactory(project=project, name="continue")
    make_version(prompt, "Once upon a time", actor=editor)
    gemma = services.local_endpoint_ensure(project=project, spec=local_models.GEMMA_3_270M, actor=editor)
    run = playground_services.playground_run_create(
        project=project, actor=editor, content=_content(prompt), variables={}, endpoints=[gemma]
    )
    assert run.results.get().request["prompt"] == "Once upon a time"  # sent as a plain completion
    result = playground_services.playground_result_execute(result_id=run.results.get().pk)
    assert result.status == ResultStatus.FAILED
    assert "Gemma 3 270M base (Q4_K_M) is still installing (75%): downloading model part 2 of 4" in result.error_message


def test_it_picks_the_local_chat_model_first_not_the_completion_model(project, editor, client_for, support, settings):
    qwen = services.endpoint_create(
        project=project, actor=editor, name="Local Qwen2.5-Coder 0.5B", kind=EndpointKind.LOCAL,
        model="openai/qwen2.5-coder-0.5b-instruct", api_base="http://127.0.0.1:9/v1",
    )  # fmt: skip
    gemma = services.local_endpoint_ensure(project=project, spec=local_models.GEMMA_3_270M, actor=editor)
    html = client_for(editor).get(reverse("playground:playground", args=[project.slug]) + "?prompt=support").content
    assert f'value="{qwen.pk}" id="endpoint-{qwen.pk}" checked'.encode() in html
    assert f'value="{gemma.pk}" id="endpoint-{gemma.pk}">'.encode() in html


def _content(prompt):
    from apps.prompts.content import content_of

    return content_of(prompt.versions.get())


def _values():
    return {"product": "Acme", "customer": "Dana", "question": "hi", "tries": 1}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"var-tries": "many"}, "variable 'tries': 'many' is not a number"),
        ({"msg-1-content": "{{ customer }} asks {{ nope }}"}, "variable 'nope' has no value"),
        ({"msg-1-content": "{% if %}"}, "message 2 (user)"),
        ({"endpoints": []}, "Pick at least one model endpoint"),
    ],
)
def test_it_names_the_problem_and_keeps_what_was_typed(
    project, editor, client_for, support, simulated_endpoint, change, message
):
    endpoint = simulated_endpoint()
    form = run_form([endpoint], **change)
    response = client_for(editor).post(reverse("playground:playground", args=[project.slug]), form)
    html = unescape(response.content.decode())
    assert response.status_code == 400
    assert message in html
    assert 'name="var-product">Acme</textarea>' in html  # what was typed is still in the form
    assert not PlaygroundRun.objects.exists()


def test_it_runs_unsaved_content_without_touching_the_version(
    project, editor, client_for, support, simulated_endpoint, django_capture_on_commit_callbacks
):
    endpoint = simulated_endpoint()
    form = run_form([endpoint], **{"msg-1-content": "Plainly: {{ question }}"})
    with django_capture_on_commit_callbacks():
        client_for(editor).post(reverse("playground:playground", args=[project.slug]), form)
    run = PlaygroundRun.objects.get()
    assert run.version is None
    assert run.content["messages"][1]["content"] == "Plainly: {{ question }}"
    assert support.versions.count() == 1


def test_it_answers_404_for_another_projects_endpoint_or_run(project, editor, client_for, support, simulated_endpoint):
    other = ProjectFactory(slug="other")
    foreign = simulated_endpoint("Foreign", for_project=other)
    client = client_for(editor)
    response = client.post(reverse("playground:playground", args=[project.slug]), run_form([foreign]))
    assert response.status_code == 404
    foreign_run = PlaygroundRun.objects.create(project=other, content={}, variables={})
    assert client.get(reverse("playground:run", args=[project.slug, foreign_run.pk])).status_code == 404
    admin = client_for(_admin(project))
    assert admin.get(reverse("providers:endpoint_edit", args=[project.slug, foreign.pk])).status_code == 404
    assert admin.post(reverse("providers:endpoint_test", args=[project.slug, foreign.pk])).status_code == 404


def _admin(project):
    from apps.accounts.tests.factories import MembershipFactory

    return MembershipFactory(project=project, role="admin", user__username="root").user


def test_it_is_for_editors_and_endpoint_admin_is_for_admins(project, member, client_for, simulated_endpoint):
    endpoint = simulated_endpoint()
    viewer = client_for(member("viewer", "vic"))
    assert viewer.get(reverse("playground:playground", args=[project.slug])).status_code == 403
    assert viewer.get(reverse("providers:endpoints", args=[project.slug])).status_code == 200
    editor = client_for(member("editor", "ed"))
    assert editor.get(reverse("providers:endpoint_create", args=[project.slug])).status_code == 403
    assert editor.post(reverse("providers:endpoint_test", args=[project.slug, endpoint.pk])).status_code == 403
    assert editor.post(reverse("providers:endpoint_delete", args=[project.slug, endpoint.pk])).status_code == 403


@pytest.mark.browser
@pytest.mark.worker
def test_it_shows_outputs_side_by_side_from_a_real_worker(
    project, editor, support, simulated_endpoint, sim_server, celery_worker, login_page
):
    sim_server.configure(latency_ms=300)
    simulated_endpoint("Echo"), simulated_endpoint("Upper", "openai/upper")
    page = login_page(editor)
    page.goto(reverse("playground:playground", args=[project.slug]) + "?prompt=support")
    page.fill("#var-customer", "Lee")
    page.check("text=Echo")
    page.check("text=Upper")
    page.click("#run-button")

    page.wait_for_selector(".result[data-endpoint='Upper'][data-status='done']", timeout=30_000)
    page.wait_for_selector(".result[data-endpoint='Echo'][data-status='done']", timeout=30_000)
    assert page.inner_text(".result[data-endpoint='Upper'] .output") == "LEE ASKS: WHERE IS MY INVOICE? (2 TRIES)"
    assert page.inner_text(".result[data-endpoint='Echo'] .output") == "Lee asks: Where is my invoice? (2 tries)"
    metrics = page.inner_text(".result[data-endpoint='Upper'] .metrics")
    assert "13 in / 8 out" in metrics and "ms" in metrics
    page.click(".result[data-endpoint='Upper'] summary")
    assert "You support Acme." in page.inner_text(".result[data-endpoint='Upper'] details")
    assert page.locator(".result .badge", has_text="simulated").count() == 2
    result = PlaygroundResult.objects.get(endpoint_name="Upper")
    assert result.run.created_by == editor and result.run.variables["customer"] == "Lee"


@pytest.mark.browser
def test_it_shows_a_missing_variable_without_losing_the_form(project, editor, support, simulated_endpoint, login_page):
    simulated_endpoint("Echo")
    page = login_page(editor)
    page.goto(reverse("playground:playground", args=[project.slug]) + "?prompt=support")
    page.fill("#var-tries", "lots")
    page.check("text=Echo")
    page.click("#run-button")
    page.wait_for_selector("#run-error")
    assert "variable 'tries'" in page.inner_text("#run-error")
    assert page.input_value("#var-tries") == "lots"
    assert not PlaygroundRun.objects.exists()
