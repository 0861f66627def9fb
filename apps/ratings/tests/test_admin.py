"""Release evidence is read-only in the Django admin, even for a superuser: it changes only through the studio."""

import pytest

from apps.ratings import services
from apps.ratings.models import ExperimentLink, PairwiseJudgement, Rating
from apps.ratings.tests.test_evidence import _evidence_of_b, cast, setting  # noqa: F401 (fixtures)
from apps.reviews.models import ReviewEvent

pytestmark = pytest.mark.django_db


def test_a_superuser_can_read_but_not_change_or_delete_any_evidence(client, django_user_model, setting, cast, raters):  # noqa: F811
    _, _, experiment, review = setting
    _evidence_of_b(experiment, cast, raters)
    services.experiment_link_create(review=review, experiment=experiment, actor=cast.author)
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))

    rating = Rating.objects.first()
    judgement = PairwiseJudgement.objects.first()
    link = ExperimentLink.objects.get()
    decision = ReviewEvent.objects.filter(review=review, kind="approved").get()
    for url, obj, change in [
        ("ratings/rating", rating, {"score": 1}),
        ("ratings/pairwisejudgement", judgement, {"choice": "left"}),
        ("ratings/experimentlink", link, {"candidate": "A"}),
        ("reviews/reviewevent", decision, {"kind": "rejected"}),
    ]:
        assert client.get(f"/admin/{url}/").status_code == 200
        assert client.get(f"/admin/{url}/{obj.pk}/change/").status_code == 200  # it may read
        assert client.get(f"/admin/{url}/add/").status_code == 403
        assert client.post(f"/admin/{url}/{obj.pk}/change/", change).status_code == 403
        assert client.post(f"/admin/{url}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
        bulk = client.post(f"/admin/{url}/", {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
        assert bulk.status_code in (200, 302)
        assert type(obj).objects.filter(pk=obj.pk).exists()

    rating.refresh_from_db()
    judgement_after = PairwiseJudgement.objects.get(pk=judgement.pk)
    assert (judgement_after.choice, ReviewEvent.objects.get(pk=decision.pk).kind) == (judgement.choice, "approved")
