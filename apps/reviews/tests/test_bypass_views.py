"""The studio's own label pages and the Django admin cannot move or delete a protected label."""

import pytest
from django.contrib.auth import get_user_model

from apps.prompts.models import Label, LabelMove
from apps.reviews.models import ReleasePolicy
from apps.reviews.tests.conftest import version
from apps.reviews.tests.factories import label_version_id, release

pytestmark = pytest.mark.django_db


def test_the_prompts_label_form_refuses_an_admin(client_for, prompt, policy, cast):
    client = client_for(cast.admin)
    response = client.post(
        "/p/acme/prompts/greet/labels/move/", {"label": "production", "version": "3", "reason": "hotfix"}, follow=True
    )
    assert response.status_code == 200
    assert "production is protected: a review is required" in response.content.decode()
    assert not Label.objects.filter(prompt=prompt, name="production").exists()
    assert not LabelMove.objects.exists()


def test_the_prompts_delete_form_refuses_a_protected_label(client_for, prompt, policy, cast):
    release(version(prompt, 2), requester=cast.author, approver=cast.reviewer)
    response = client_for(cast.admin).post("/p/acme/prompts/greet/labels/delete/", {"label": "production"}, follow=True)
    assert "cannot be deleted" in response.content.decode()
    assert label_version_id(prompt) == version(prompt, 2).pk


def test_the_rollback_button_works_for_a_released_version(client_for, prompt, policy, cast):
    release(version(prompt, 1), requester=cast.author, approver=cast.reviewer)
    release(version(prompt, 3), requester=cast.author, approver=cast.reviewer)
    response = client_for(cast.author).post(
        "/p/acme/prompts/greet/labels/move/",
        {"label": "production", "version": "1", "rollback": "1", "reason": "Rollback to v1"},
        follow=True,
    )
    assert "production rolled back to v1" in response.content.decode()
    assert label_version_id(prompt) == version(prompt, 1).pk


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")


def test_the_django_admin_cannot_change_add_or_delete_labels(client_for, superuser, prompt, policy, cast):
    release(version(prompt, 1), requester=cast.author, approver=cast.reviewer)
    label = Label.objects.get(prompt=prompt, name="production")
    client = client_for(superuser)
    assert client.get("/admin/prompts/label/").status_code == 200  # it may read
    assert client.get("/admin/prompts/label/add/").status_code == 403
    change = client.post(f"/admin/prompts/label/{label.pk}/change/", {"version": version(prompt, 3).pk})
    assert change.status_code == 403
    delete = client.post(f"/admin/prompts/label/{label.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    bulk = client.post(
        "/admin/prompts/label/", {"action": "delete_selected", "_selected_action": [label.pk], "post": "yes"}
    )
    assert label_version_id(prompt) == version(prompt, 1).pk, bulk.status_code


def test_the_django_admin_cannot_edit_a_release_policy(client_for, superuser, policy):
    client = client_for(superuser)
    page = client.get(f"/admin/reviews/releasepolicy/{policy.pk}/change/")
    assert page.status_code == 200 and b"Save" not in page.content  # a read-only view
    response = client.post(
        f"/admin/reviews/releasepolicy/{policy.pk}/change/",
        {"label_name": "production", "protected": "", "required_approvals": "1", "approver_roles": '["reviewer"]'},
    )
    assert response.status_code == 403
    assert ReleasePolicy.objects.get(pk=policy.pk).protected is True
    assert client.post(f"/admin/reviews/releasepolicy/{policy.pk}/delete/", {"post": "yes"}).status_code == 403


def test_the_django_admin_does_not_show_webhook_secrets(client_for, superuser, project):
    from apps.webhooks.tests.factories import WebhookFactory

    webhook = WebhookFactory(project=project)
    page = client_for(superuser).get(f"/admin/webhooks/webhook/{webhook.pk}/change/")
    assert page.status_code == 200 and webhook.secret not in page.content.decode()
