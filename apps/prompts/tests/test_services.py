import pytest

from apps.accounts.tests.factories import ProjectFactory, UserFactory
from apps.audit.models import AuditEvent
from apps.prompts import services
from apps.prompts.content import ContentProblem, build_content
from apps.prompts.models import LabelMove, PromptVersion, VersionIsImmutable
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


def test_it_creates_a_prompt_and_audits_it():
    project, user = ProjectFactory(), UserFactory()
    prompt = services.prompt_create(project=project, name="support-reply", actor=user, tags=["Support", " chat "])
    assert sorted(t.name for t in prompt.tags.all()) == ["chat", "support"]
    assert AuditEvent.objects.filter(action="prompt.created", project_id=project.pk).count() == 1


@pytest.mark.parametrize("name", ["Support Reply", "../etc", "", "-x", "a" * 101, "name/with/slash"])
def test_it_refuses_names_that_are_not_url_safe(name):
    with pytest.raises(services.PromptError, match="not a valid prompt name"):
        services.prompt_create(project=ProjectFactory(), name=name, actor=UserFactory())


def test_it_refuses_a_duplicate_name_in_the_same_project_only():
    project, user = ProjectFactory(), UserFactory()
    services.prompt_create(project=project, name="dup", actor=user)
    with pytest.raises(services.PromptError, match="already exists"):
        services.prompt_create(project=project, name="dup", actor=user)
    services.prompt_create(project=ProjectFactory(), name="dup", actor=user)


def test_it_numbers_versions_and_links_each_to_its_parent():
    prompt = PromptFactory()
    v1 = make_version(prompt, "Hi {{ name }}")
    v2 = make_version(prompt, "Hello {{ name }}")
    assert (v1.number, v2.number) == (1, 2)
    assert v2.parent == v1
    assert v1.content_hash != v2.content_hash
    assert v2.variable_names == ["name"]


def test_it_refuses_a_save_on_a_stale_parent_and_saves_nothing():
    prompt, author = PromptFactory(), UserFactory(username="first")
    make_version(prompt, "one {{ x }}", actor=author)
    make_version(prompt, "two {{ x }}", actor=author)
    content = build_content(kind="text", template="three {{ x }}")
    with pytest.raises(services.StaleParent) as caught:
        services.prompt_version_create(prompt=prompt, content=content, parent_number=1, message="", actor=UserFactory())
    assert caught.value.newest.number == 2
    assert "first" in str(caught.value)
    assert prompt.versions.count() == 2


def test_it_refuses_a_save_without_changes():
    prompt = PromptFactory()
    make_version(prompt, "same {{ x }}")
    with pytest.raises(ContentProblem, match="Nothing changed since v1"):
        make_version(prompt, "same {{ x }}")


def test_it_refuses_a_template_that_does_not_parse_and_saves_nothing():
    prompt = PromptFactory()
    with pytest.raises(ContentProblem) as caught:
        make_version(prompt, "Hello\n{{ name ")
    assert caught.value.line == 2
    assert prompt.versions.count() == 0


def test_it_never_changes_a_saved_version():
    version = make_version(PromptFactory(), "Hi {{ n }}")
    version.template = "changed"
    with pytest.raises(VersionIsImmutable):
        version.save()
    assert PromptVersion.objects.get(pk=version.pk).template == "Hi {{ n }}"


def test_it_keeps_types_descriptions_and_samples_of_variables():
    content = build_content(
        kind="chat",
        messages=[
            {"role": "system", "content": "{% for i in items %}{{ i }}{% endfor %}"},
            {"role": "user", "content": "{{ q }}"},
        ],
        variable_specs=[{"name": "q", "type": "string", "description": "the question", "sample": "why?"}],
    )
    assert content.variables == [
        {"name": "items", "type": "list", "description": ""},
        {"name": "q", "type": "string", "description": "the question", "sample": "why?"},
    ]


@pytest.mark.parametrize(
    "config,field",
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": "x"}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": [""]}, "stop"),
        ({"response_format": "yaml"}, "response_format"),
        ({"extra": {"api_key": "sk-123"}}, "extra"),
        ({"seed": 1}, "config"),
    ],
)
def test_it_refuses_a_bad_model_config_naming_the_field(config, field):
    with pytest.raises(ContentProblem) as caught:
        build_content(kind="text", template="x", config=config)
    assert caught.value.field == field


def test_it_moves_a_label_records_history_and_audits_it():
    prompt, user = PromptFactory(), UserFactory(username="mover")
    v1, v2 = make_version(prompt, "a {{ x }}"), make_version(prompt, "b {{ x }}")
    services.label_move(prompt=prompt, label_name="production", version=v1, actor=user, reason="first release")
    services.label_move(prompt=prompt, label_name="production", version=v2, actor=user)
    services.label_move(prompt=prompt, label_name="production", version=v1, actor=user, rollback=True)
    moves = list(LabelMove.objects.filter(prompt=prompt).order_by("id"))
    assert [(m.action, m.from_version, m.to_version) for m in moves] == [
        ("created", None, v1),
        ("moved", v1, v2),
        ("rolled_back", v2, v1),
    ]
    assert moves[0].reason == "first release"
    assert prompt.labels.get(name="production").version == v1
    actions = list(
        AuditEvent.objects.filter(object_type="prompts.label").order_by("id").values_list("action", flat=True)
    )
    assert actions == ["label.created", "label.moved", "label.rolled_back"]


def test_it_refuses_to_move_latest_by_hand():
    prompt = PromptFactory()
    version = make_version(prompt, "a")
    with pytest.raises(services.PromptError, match="latest"):
        services.label_move(prompt=prompt, label_name="latest", version=version, actor=UserFactory())


def test_it_refuses_a_version_of_another_prompt():
    prompt, other = PromptFactory(), PromptFactory()
    foreign = make_version(other, "a")
    with pytest.raises(services.PromptError, match="another prompt"):
        services.label_move(prompt=prompt, label_name="production", version=foreign, actor=UserFactory())


def test_it_deletes_a_label_but_keeps_its_history():
    prompt, user = PromptFactory(), UserFactory()
    version = make_version(prompt, "a")
    services.label_move(prompt=prompt, label_name="staging", version=version, actor=user)
    services.label_delete(prompt=prompt, label_name="staging", actor=user)
    assert not prompt.labels.exists()
    assert LabelMove.objects.filter(prompt=prompt, action="deleted", from_version=version).exists()


def test_a_guard_can_refuse_a_move_and_nothing_changes():
    prompt, user = PromptFactory(), UserFactory()
    v1, v2 = make_version(prompt, "a"), make_version(prompt, "b")
    services.label_move(prompt=prompt, label_name="production", version=v1, actor=user)

    def refuse(attempt):
        if attempt.label_name == "production":
            raise services.LabelMoveRefused("production needs a review")

    services.register_label_move_guard(refuse)
    try:
        with pytest.raises(services.LabelMoveRefused, match="needs a review"):
            services.label_move(prompt=prompt, label_name="production", version=v2, actor=user)
        with pytest.raises(services.LabelMoveRefused):
            services.label_delete(prompt=prompt, label_name="production", actor=user)
    finally:
        services._label_move_guards.remove(refuse)
    assert prompt.labels.get(name="production").version == v1
    assert LabelMove.objects.filter(prompt=prompt).count() == 1
