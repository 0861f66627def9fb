"""The studio pages of ratings: blind review, the comparison, statistics and JSON, exports, roles and projects."""

import json
import re

import pytest

from apps.accounts.tests.factories import MembershipFactory, ProjectFactory
from apps.ratings import services
from apps.ratings.models import Assignment, PairwiseJudgement, Rating
from apps.ratings.tests.factories import judge_all, make_experiment

pytestmark = pytest.mark.django_db

SECRET_VARIANT_NAMES = ("ZEBRA-VARIANT", "OKAPI-VARIANT")


@pytest.fixture
def blind_setup(project, editor, raters):
    experiment = make_experiment(
        project, editor, rows=12, variant_names=SECRET_VARIANT_NAMES, prompt_name="secret-prompt-name",
        output=lambda v, p, r, item: f"output {p} {'short' if v.startswith('Z') else 'long and friendly'}",
    )  # fmt: skip
    queue = services.queue_create(
        experiment=experiment, name="Blind review", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=1, rater_ids=[raters[0].pk], actor=editor,
    )  # fmt: skip
    return experiment, queue


def _forbidden_strings(experiment):
    found = []
    for variant in experiment.variants.select_related("prompt_version__prompt", "endpoint"):
        found += [variant.name, variant.prompt_version.prompt.name, variant.endpoint.name]
    return found


def _numbers_in_attributes(html: str, queue, token: str) -> set[int]:
    """Whole numbers in attribute values and URLs, leaving out the queue's own URL, tokens and shortcut keys."""
    numbers = set()
    for name, value in re.findall(r'\s([\w:-]+)="([^"]*)"', html):
        if name in (
            "charset",
            "class",
            "data-key",
            "aria-valuenow",
            "aria-valuemin",
            "aria-valuemax",
            "style",
            "maxlength",
            "content",
        ):
            continue
        if value == token or len(value) >= 32 and re.fullmatch(r"[\w-]+", value):  # the token, the CSRF token
            continue
        value = value.replace(f"/queues/{queue.pk}/", "/queues/Q/")
        numbers |= {int(n) for n in re.findall(r"\b\d+\b", value)}
    return numbers


def test_the_blind_page_names_no_variant_prompt_endpoint_or_cell(client_for, raters, blind_setup):
    experiment, queue = blind_setup
    client = client_for(raters[0])
    for _ in range(12):
        page = client.get(f"/p/acme/ratings/queues/{queue.pk}/")
        html = page.content.decode()
        assert page.status_code == 200 and "Left is better" in html
        for secret in _forbidden_strings(experiment):
            assert secret not in html
        assignment = Assignment.objects.filter(rater=raters[0], status="pending").order_by("sequence").first()
        secret_ids = {assignment.left_cell_id, assignment.right_cell_id}
        secret_ids |= {assignment.left_cell.variant_id, assignment.right_cell.variant_id, experiment.pk}
        leaked = _numbers_in_attributes(html, queue, assignment.token) & secret_ids
        assert not leaked, [
            a for a in re.findall(r'\s([\w:-]+)="([^"]*)"', html) if any(str(n) in a[1] for n in leaked)
        ]
        assert f'value="{assignment.token}"' in html
        response = client.post(
            f"/p/acme/ratings/queues/{queue.pk}/submit/", {"token": assignment.token, "choice": "left"}
        )
        for secret in _forbidden_strings(experiment):
            assert secret not in response.content.decode()
    assert PairwiseJudgement.objects.count() == 12
    assert "Your queue is done" in client.get(f"/p/acme/ratings/queues/{queue.pk}/").content.decode()


def test_a_wrong_token_is_a_clear_error_and_records_nothing(client_for, raters, blind_setup):
    _, queue = blind_setup
    response = client_for(raters[0]).post(
        f"/p/acme/ratings/queues/{queue.pk}/submit/", {"token": "nope", "choice": "left"}
    )
    assert response.status_code == 400 and "not in your queue" in response.content.decode()
    assert not PairwiseJudgement.objects.exists()


def test_after_submitting_the_rater_sees_what_others_chose_in_their_own_terms(project, client_for, editor, raters):
    experiment = make_experiment(project, editor, rows=2)
    queue = services.queue_create(
        experiment=experiment, name="Blind", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=2, rater_ids=[raters[0].pk, raters[1].pk], actor=editor,
    )  # fmt: skip
    judge_all(queue, [raters[0]], lambda rater, p: "B")
    client = client_for(raters[1])
    page = client.get(f"/p/acme/ratings/queues/{queue.pk}/").content.decode()
    assert "Others on that item" not in page and "chose" not in page
    assignment = Assignment.objects.filter(rater=raters[1], status="pending").order_by("sequence").first()
    b_side = "left" if assignment.left_cell.variant.name == "B" else "right"
    response = client.post(f"/p/acme/ratings/queues/{queue.pk}/submit/", {"token": assignment.token, "choice": b_side})
    html = response.content.decode()
    expected = "1 chose your left, 0 your right" if b_side == "left" else "0 chose your left, 1 your right"
    assert expected in html


def test_the_comparison_page_shows_outputs_scores_and_the_rating_form(client_for, editor, experiment):
    page = client_for(editor).get(f"/p/acme/ratings/experiments/{experiment.pk}/compare/")
    html = page.content.decode()
    assert page.status_code == 200 and "answer 0 from A" in html and "quality 0.90" in html
    assert '<ins class="diff-ins">B politely</ins>' in html
    assert 'data-score="5"' in html and "next / previous item" in html
    filtered = client_for(editor).get(
        f"/p/acme/ratings/experiments/{experiment.pk}/compare/?only=low&part=items", HTTP_HX_REQUEST="true"
    )
    assert filtered.status_code == 200 and "<html" not in filtered.content.decode()


def test_rating_from_the_comparison_page_by_htmx(client_for, editor, experiment):
    cell = experiment.cells.get(variant__name="A", position=1)
    url = f"/p/acme/ratings/experiments/{experiment.pk}/cells/{cell.pk}/rate/"
    response = client_for(editor).post(url, {"score": "4"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Your rating saved" in response.content.decode()
    assert Rating.objects.get(cell=cell).score == 4
    bad = client_for(editor).post(url, {"score": "12"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and "Score must be from 1 to 5, not 12" in bad.content.decode()


def test_another_projects_experiment_and_cells_answer_404(client_for, editor, experiment):
    other_project = ProjectFactory(slug="other")
    MembershipFactory(project=other_project, user=editor, role="editor")
    other = make_experiment(other_project, editor, prompt_name="other")
    client = client_for(editor)
    assert client.get(f"/p/acme/ratings/experiments/{other.pk}/compare/").status_code == 404
    assert client.get(f"/p/acme/ratings/experiments/{other.pk}/summary.json").status_code == 404
    cell = other.cells.first()
    assert (
        client.post(f"/p/acme/ratings/experiments/{experiment.pk}/cells/{cell.pk}/rate/", {"score": "3"}).status_code
        == 404
    )
    assert not Rating.objects.exists()


def test_a_viewer_reads_statistics_but_cannot_rate_or_export(client_for, member, experiment):
    viewer = member("viewer", "vera")
    client = client_for(viewer)
    assert client.get(f"/p/acme/ratings/experiments/{experiment.pk}/stats/").status_code == 200
    cell = experiment.cells.first()
    assert (
        client.post(f"/p/acme/ratings/experiments/{experiment.pk}/cells/{cell.pk}/rate/", {"score": "3"}).status_code
        == 403
    )
    assert client.get(f"/p/acme/ratings/experiments/{experiment.pk}/export/ratings.csv").status_code == 403


def test_the_summary_json_has_the_fields_the_api_returns(client_for, editor, raters, experiment):
    queue = services.queue_create(
        experiment=experiment, name="Blind", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=3, rater_ids=[r.pk for r in raters], actor=editor,
    )  # fmt: skip
    judge_all(queue, raters, lambda rater, p: "B")
    data = client_for(editor).get(f"/p/acme/ratings/experiments/{experiment.pk}/summary.json").json()
    assert {"mean_rating", "ci_low", "ci_high", "n"} <= set(data["variants"][0])
    assert {"win_rate", "ci_low", "ci_high", "p_value", "ties", "n"} <= set(data["pairs"][0])
    assert data["agreement"]["method"] == "krippendorff_alpha" and data["pairs"][0]["n"] == 18
    assert data["verdict"].startswith("B beats A on 100%")


def test_the_statistics_page_shows_the_verdict_and_charts(client_for, editor, raters, experiment):
    queue = services.queue_create(
        experiment=experiment, name="Blind", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=1, rater_ids=[raters[0].pk], actor=editor,
    )  # fmt: skip
    judge_all(queue, raters[:1], lambda rater, p: "B" if p % 2 else "tie")
    html = client_for(editor).get(f"/p/acme/ratings/experiments/{experiment.pk}/stats/").content.decode()
    assert "No significant difference yet between B and A" in html
    assert 'id="chart-win_matrix"' in html and 'id="chart-forest"' in html and "plotly-cartesian.min.js" in html


def test_exports_ratings_judgements_preferences_and_finetuning(client_for, editor, raters, experiment):
    queue = services.queue_create(
        experiment=experiment, name="Blind", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=1, rater_ids=[raters[0].pk], actor=editor,
    )  # fmt: skip
    judge_all(queue, raters[:1], lambda rater, p: "B" if p else "tie", reason="=HYPERLINK()")
    cell = experiment.cells.get(variant__name="B", position=2)
    services.rating_submit(cell=cell, rater=raters[1], data={"score": "5"}, comment="great")
    client = client_for(editor)
    base = f"/p/acme/ratings/experiments/{experiment.pk}/export/"
    judgements = b"".join(client.get(base + "judgements.csv").streaming_content).decode()
    assert judgements.count("\n") == 7 and ",B," in judgements and "'=HYPERLINK()" in judgements
    ratings = b"".join(client.get(base + "ratings.csv").streaming_content).decode()
    assert "rater2" in ratings and "great" in ratings
    lines = b"".join(client.get(base + "preferences.jsonl").streaming_content).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 5  # the tie says nothing about preference
    assert all(r["chosen"].endswith("politely") and not r["rejected"].endswith("politely") for r in records)
    finetune = [
        json.loads(x) for x in b"".join(client.get(base + "finetune.jsonl").streaming_content).decode().splitlines()
    ]
    assert finetune == [
        {"messages": [{"role": "user", "content": str(cell.item.input)}, {"role": "assistant", "content": cell.output}]}
    ]
    assert client.get(base + "secrets.txt").status_code == 404


def test_my_queues_lists_the_raters_queue_with_progress(client_for, raters, blind_setup):
    _, queue = blind_setup
    html = client_for(raters[0]).get("/p/acme/ratings/").content.decode()
    assert "Blind review" in html and f"/p/acme/ratings/queues/{queue.pk}/" in html and "0 of 12" in html


def test_an_editor_makes_a_queue_from_the_form_and_bad_input_is_named(client_for, editor, raters, experiment):
    client = client_for(editor)
    url = f"/p/acme/ratings/experiments/{experiment.pk}/queues/new/"
    assert client.get(url).status_code == 200
    variant_ids = list(experiment.variants.values_list("pk", flat=True))
    bad = client.post(url, {"name": "q", "kind": "pairwise", "variants": variant_ids[:1], "raters_per_item": 1})
    assert bad.status_code == 400 and "needs at least two variants" in bad.content.decode()
    good = client.post(
        url,
        {"name": "Blind 2", "kind": "pairwise", "variants": variant_ids, "raters_per_item": 2,
         "raters": [raters[0].pk, raters[1].pk]},
    )  # fmt: skip
    assert good.status_code == 302 and Assignment.objects.filter(item__queue__name="Blind 2").count() == 12


def test_the_rating_form_page_saves_labels_and_criteria(client_for, editor, experiment):
    url = f"/p/acme/ratings/experiments/{experiment.pk}/form/"
    response = client_for(editor).post(
        url,
        {"thumbs": "on", "scale_max": "5", "labels": "correct, wrong", "criteria": "accuracy, tone", "comment": "on"},
    )
    assert response.status_code == 302
    assert services.form_definition(experiment)["criteria"] == ["accuracy", "tone"]
    bad = client_for(editor).post(url, {"scale_max": "0"})
    assert bad.status_code == 400 and "needs at least one question" in bad.content.decode()


def test_only_admins_edit_evidence_thresholds(client_for, member, project):
    from apps.reviews.tests.factories import ReleasePolicyFactory

    ReleasePolicyFactory(project=project, label_name="production")
    admin, editor = member("admin", "adam"), member("editor", "ed")
    url = "/p/acme/ratings/policies/production/thresholds/"
    assert client_for(editor).get(url).status_code == 403
    assert client_for(admin).get("/p/acme/ratings/policies/nope/thresholds/").status_code == 404
    response = client_for(admin).post(url, {"required": "on", "min_win_rate": "0.55", "max_p_value": "0.05"})
    assert response.status_code == 302
    from apps.reviews.models import ReleasePolicy

    rules = ReleasePolicy.objects.get(project=project).evidence_rules
    assert rules == {"required": True, "min_win_rate": 0.55, "max_p_value": 0.05}
