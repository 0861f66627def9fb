"""Tool calls answered by hand, structured output checked against its schema, images refused or sent, versions
compared side by side, parameters per run, and a draft saved as a version: all through the gateway, on the
simulated OpenAI-compatible server."""

from __future__ import annotations

import json
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.core.tests.pages import facts
from apps.playground import services
from apps.playground.models import PlaygroundRun
from apps.prompts.content import build_content
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.providers.models import EndpointKind, EndpointMode, ResultStatus
from apps.providers.services import endpoint_create

WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _chat(question: str, **config):
    return build_content(kind="chat", messages=[{"role": "user", "content": question}], config=config)


def _run(project, editor, endpoint, content, **options):
    run = services.playground_run_create(
        project=project, actor=editor, content=content, variables={}, endpoints=[endpoint], **options
    )
    return [services.playground_result_execute(result_id=r.pk) for r in run.results.order_by("id")]


def test_it_shows_a_tool_call_takes_the_answer_by_hand_and_finishes_the_turn(
    project, editor, simulated_endpoint, sim_server
):
    endpoint = simulated_endpoint()
    (asked,) = _run(project, editor, endpoint, _chat("Weather in Paris? [[tool:get_weather]]", tools=WEATHER))
    assert asked.status == ResultStatus.DONE and asked.finish_reason == "tool_calls"
    (call,) = asked.tool_calls
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Weather in Paris?"}
    assert sim_server.requests()[-1].body["tools"][0]["function"]["name"] == "get_weather"

    with pytest.raises(services.PlaygroundError, match="Answer the call to get_weather"):
        services.playground_result_continue(result=asked, actor=editor, tool_answers={})

    follow_up = services.playground_result_continue(
        result=asked, actor=editor, tool_answers={call["id"]: '{"sky": "sunny", "celsius": 21}'}
    )
    assert follow_up.parent_result == asked
    answered = services.playground_result_execute(result_id=follow_up.results.get().pk)
    assert answered.output == 'Tool get_weather said: {"sky": "sunny", "celsius": 21}'
    sent = sim_server.requests()[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == call["id"] and sent[2]["tool_call_id"] == call["id"]


def test_it_continues_a_chat_over_several_turns(project, editor, simulated_endpoint, sim_server):
    endpoint = simulated_endpoint("Upper", "openai/upper")
    (first,) = _run(project, editor, endpoint, _chat("hello there", temperature=0.3))
    with pytest.raises(services.PlaygroundError, match="Write the next message"):
        services.playground_result_continue(result=first, actor=editor, text="  ")
    second_run = services.playground_result_continue(result=first, actor=editor, text="and again")
    second = services.playground_result_execute(result_id=second_run.results.get().pk)
    assert second.output == "AND AGAIN"
    body = sim_server.requests()[-1].body
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "hello there"),
        ("assistant", "HELLO THERE"),
        ("user", "and again"),
    ]
    assert body["temperature"] == 0.3  # the parameters of the run go on with the conversation


def test_it_parses_structured_output_and_names_what_the_schema_refuses(project, editor, simulated_endpoint):
    endpoint = simulated_endpoint()
    response_format = {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}}
    (good,) = _run(project, editor, endpoint, _chat("Rome for three days", response_format=response_format))
    assert good.structured == {"city": "Rome for three days", "days": 4} and good.schema_errors == []
    (bad,) = _run(project, editor, endpoint, _chat("Rome [[break-schema]]", response_format=response_format))
    assert bad.status == ResultStatus.DONE and bad.structured == {}
    assert bad.schema_errors == ["(root): 'city' is a required property", "(root): 'days' is a required property"]


def test_it_refuses_an_output_schema_that_is_no_json_schema(project, editor, simulated_endpoint):
    endpoint = simulated_endpoint()
    broken = {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "thing"}}}
    with pytest.raises(services.PlaygroundError, match="not a valid JSON schema at type"):
        services.playground_run_create(
            project=project, actor=editor, content=_chat("hi", response_format=broken), variables={},
            endpoints=[endpoint],
        )  # fmt: skip
    assert not PlaygroundRun.objects.exists()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([SimpleUploadedFile("notes.txt", b"just some text")], "'notes.txt' is not a PNG, JPEG, GIF or WebP image"),
        ([SimpleUploadedFile("fake.png", b"GIF8 but not really")], "'fake.png' is not a PNG, JPEG, GIF or WebP"),
        ([SimpleUploadedFile("huge.png", PNG + b"\x00" * (2 * 1024 * 1024))], "the limit is 2 MB per image"),
        ([SimpleUploadedFile(f"{i}.png", PNG) for i in range(5)], "At most 4 images per run; 5 were chosen"),
    ],
)
def test_it_refuses_files_that_are_no_images_or_too_many_or_too_large(files, message):
    with pytest.raises(services.PlaygroundError, match=message):
        services.playground_images_read(files)


def test_it_sends_an_image_as_a_content_part_and_keeps_it_with_the_run(project, editor, simulated_endpoint, sim_server):
    endpoint = simulated_endpoint()
    images = services.playground_images_read([SimpleUploadedFile("dot.png", PNG)])
    (result,) = _run(project, editor, endpoint, _chat("What is in the picture?"), images=images)
    assert result.status == ResultStatus.DONE and result.output == "What is in the picture?"
    content = sim_server.requests()[-1].body["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "What is in the picture?"}
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")
    assert result.run.images[0]["name"] == "dot.png" and result.run.images[0]["size"] == len(PNG)


def test_it_refuses_images_for_an_endpoint_that_does_not_take_them(project, editor, simulated_endpoint):
    text_only = simulated_endpoint("Completions", mode=EndpointMode.COMPLETION)
    images = services.playground_images_read([SimpleUploadedFile("dot.png", PNG)])
    with pytest.raises(services.PlaygroundError, match="'Completions' .* does not take images"):
        services.playground_run_create(
            project=project, actor=editor, content=_chat("hi"), variables={}, endpoints=[text_only], images=images
        )


# --- through the page -----------------------------------------------------------------------------------


@pytest.fixture
def greet(project, editor):
    prompt = PromptFactory(project=project, name="greet")
    make_version(prompt, "Hello {{ name }}", samples={"name": "Ada"}, config={"temperature": 0.5}, actor=editor)
    make_version(prompt, "Goodbye {{ name }}", samples={"name": "Ada"}, config={"temperature": 0.5}, actor=editor)
    return prompt


def _form(endpoint, **values):
    form = {"prompt": "greet", "version": "2", "parent": "2", "intent": "run", "template": "Goodbye {{ name }}",
            "var-name": "Ada", "endpoints": [endpoint.pk]}  # fmt: skip
    form.update(values)
    return form


def test_it_runs_compared_versions_side_by_side_with_the_same_variables(
    project, editor, client_for, greet, simulated_endpoint
):
    endpoint = simulated_endpoint()
    url = reverse("playground:playground", args=[project.slug])
    page = client_for(editor).get(url + "?prompt=greet&version=2&compare=1")
    assert 'id="compare-1" data-autosubmit checked' in page.content.decode()
    response = client_for(editor).post(url, _form(endpoint, compare=["1"]))
    assert response.status_code == 302
    results = list(PlaygroundRun.objects.get().results.order_by("id"))
    assert [(r.label, r.version.number, r.request["messages"][0]["content"]) for r in results] == [
        ("v2", 2, "Goodbye Ada"),
        ("v1", 1, "Hello Ada"),
    ]


def test_it_takes_parameters_and_tools_per_run(project, editor, client_for, greet, simulated_endpoint):
    endpoint = simulated_endpoint()
    url = reverse("playground:playground", args=[project.slug])
    form = _form(endpoint, params_shown="1", **{"param-temperature": "1.2", "param-max_tokens": "7",
                 "param-tools": json.dumps(WEATHER), "param-schema": json.dumps(SCHEMA)})  # fmt: skip
    assert client_for(editor).post(url, form).status_code == 302
    run = PlaygroundRun.objects.get()
    request = run.results.get().request
    assert (request["temperature"], request["max_tokens"]) == (1.2, 7)
    assert request["tools"] == WEATHER and request["response_format"]["json_schema"]["schema"] == SCHEMA
    assert run.version is None  # other parameters than v2's: the run is a draft


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"param-tools": "[{"}, "tools is not valid JSON"),
        ({"param-tools": '[{"name": "two words"}]'}, "tool 1: name must be 1-64 letters"),
        ({"param-temperature": "hot"}, "temperature must be a number"),
    ],
)
def test_it_names_a_bad_parameter_and_runs_nothing(
    project, editor, client_for, greet, simulated_endpoint, change, message
):
    endpoint = simulated_endpoint()
    response = client_for(editor).post(
        reverse("playground:playground", args=[project.slug]), _form(endpoint, params_shown="1", **change)
    )
    assert response.status_code == 400 and message in unescape(response.content.decode())
    assert not PlaygroundRun.objects.exists()


def test_it_saves_the_draft_as_a_new_version_on_top_of_the_one_opened(
    project, editor, client_for, greet, simulated_endpoint
):
    endpoint = simulated_endpoint()
    url = reverse("playground:playground", args=[project.slug])
    form = _form(endpoint, intent="save", template="See you, {{ name }}", message="friendlier", params_shown="1",
                 **{"param-temperature": "0.9"})  # fmt: skip
    response = client_for(editor).post(url, form)
    assert response.status_code == 302 and response["Location"].endswith("?prompt=greet&version=3")
    saved = greet.versions.get(number=3)
    assert (saved.template, saved.config, saved.message, saved.parent.number) == (
        "See you, {{ name }}", {"temperature": 0.9}, "friendlier", 2,
    )  # fmt: skip
    assert not PlaygroundRun.objects.exists()


def test_it_refuses_to_save_on_a_stale_version_and_keeps_the_draft(
    project, editor, client_for, greet, simulated_endpoint
):
    endpoint = simulated_endpoint()
    url = reverse("playground:playground", args=[project.slug])
    form = _form(endpoint, intent="save", version="1", parent="1", template="Hi again {{ name }}")
    response = client_for(editor).post(url, form)
    html = unescape(response.content.decode())
    assert response.status_code == 409
    assert "You started from v1, but v2 was saved since" in html and "Hi again {{ name }}" in html
    assert greet.versions.count() == 2


def test_the_run_page_shows_the_tool_call_with_an_answer_field_and_the_structured_tree(
    project, editor, client_for, simulated_endpoint
):
    endpoint = simulated_endpoint()
    (asked,) = _run(project, editor, endpoint, _chat("Weather? [[tool:get_weather]]", tools=WEATHER))
    html = client_for(editor).get(reverse("playground:run", args=[project.slug, asked.run_id])).content.decode()
    call_id = asked.tool_calls[0]["id"]
    assert f'name="tool-{call_id}"' in html and "Send the tool results" in html
    checked = facts(html)
    assert not checked.inline_scripts and not checked.handlers and not checked.unlabelled() and 'style="' not in html
    response_format = {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}}
    (structured,) = _run(project, editor, endpoint, _chat("Oslo", response_format=response_format))
    html = client_for(editor).get(reverse("playground:run", args=[project.slug, structured.run_id])).content.decode()
    assert 'data-key="city"' in html and "matches the schema" in html


def test_a_remote_text_model_takes_no_images(project, editor):
    remote = endpoint_create(
        project=project, actor="test", name="Old GPT", kind=EndpointKind.REMOTE, model="openai/gpt-3.5-turbo-instruct",
        api_base="http://127.0.0.1:9/v1",
    )  # fmt: skip
    images = services.playground_images_read([SimpleUploadedFile("dot.png", PNG)])
    with pytest.raises(services.PlaygroundError, match="'Old GPT' .* does not take images"):
        services.playground_run_create(
            project=project, actor=editor, content=_chat("hi"), variables={}, endpoints=[remote], images=images
        )


def test_the_page_refuses_a_file_that_is_no_image_and_keeps_the_form(
    project, editor, client_for, greet, simulated_endpoint
):
    endpoint = simulated_endpoint()
    form = _form(endpoint, images=[SimpleUploadedFile("cat.png", b"%PDF-1.7 not a picture")])
    response = client_for(editor).post(reverse("playground:playground", args=[project.slug]), form)
    html = unescape(response.content.decode())
    assert response.status_code == 400
    assert "'cat.png' is not a PNG, JPEG, GIF or WebP image. Nothing was sent." in html
    assert "Goodbye {{ name }}" in html and not PlaygroundRun.objects.exists()


def test_the_page_sends_an_uploaded_image_with_the_run(project, editor, client_for, greet, simulated_endpoint):
    endpoint = simulated_endpoint()
    form = _form(endpoint, images=[SimpleUploadedFile("dot.png", PNG)])
    assert client_for(editor).post(reverse("playground:playground", args=[project.slug]), form).status_code == 302
    run = PlaygroundRun.objects.get()
    assert [image["name"] for image in run.images] == ["dot.png"]
    parts = run.results.get().request["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "Goodbye Ada"} and parts[1]["type"] == "image_url"
    html = client_for(editor).get(reverse("playground:run", args=[project.slug, run.pk])).content.decode()
    assert 'class="figure-img img-thumbnail run-image" src="data:image/png;base64,' in html


def test_an_edited_draft_runs_as_the_draft_beside_the_saved_version(
    project, editor, client_for, greet, simulated_endpoint
):
    endpoint = simulated_endpoint()
    url = reverse("playground:playground", args=[project.slug])
    form = _form(endpoint, template="Farewell {{ name }}", compare=["2"], version="1", parent="1")
    assert client_for(editor).post(url, form).status_code == 302
    run = PlaygroundRun.objects.get()
    results = list(run.results.order_by("id"))
    assert [(r.label, r.version_id, r.request["messages"][0]["content"]) for r in results] == [
        ("draft", None, "Farewell Ada"),
        ("v2", greet.versions.get(number=2).pk, "Goodbye Ada"),
    ]
    assert run.version is None and run.content["template"] == "Farewell {{ name }}"
