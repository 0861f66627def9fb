import pytest
from django.test import Client

from apps.accounts.models import Membership
from apps.accounts.tests.factories import MembershipFactory, ProjectFactory, UserFactory
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_an_admin_adds_a_member_and_it_is_audited(client_for, member, project):
    admin = member("admin", "boss")
    UserFactory(username="newbie")
    response = client_for(admin).post("/p/acme/members/", {"username": "newbie", "role": "reviewer"})
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user__username="newbie").role == "reviewer"
    event = AuditEvent.objects.get(action="member.added", object_repr="newbie")
    assert event.after == {"role": "reviewer"} and event.actor_repr == "boss"


def test_it_names_an_unknown_user(client_for, member):
    response = client_for(member("admin")).post("/p/acme/members/", {"username": "ghost", "role": "viewer"})
    assert b"No user is called" in response.content


def test_an_admin_changes_a_role_and_it_is_audited(client_for, member, project):
    admin, other = member("admin"), member("viewer", "val")
    membership = Membership.objects.get(user=other)
    client_for(admin).post(f"/p/acme/members/{membership.pk}/role/", {"role": "editor"})
    membership.refresh_from_db()
    assert membership.role == "editor"
    assert AuditEvent.objects.filter(action="member.role_changed", before={"role": "viewer"}).exists()


def test_the_last_admin_cannot_be_demoted_or_removed(client_for, member):
    admin = member("admin")
    membership = Membership.objects.get(user=admin)
    client = client_for(admin)
    response = client.post(f"/p/acme/members/{membership.pk}/role/", {"role": "viewer"}, follow=True)
    assert b"at least one admin" in response.content
    client.post(f"/p/acme/members/{membership.pk}/remove/")
    membership.refresh_from_db()
    assert membership.role == "admin"


@pytest.mark.parametrize("role", ["viewer", "editor", "reviewer"])
def test_only_admins_manage_members(client_for, member, role):
    client = client_for(member(role))
    assert client.get("/p/acme/members/").status_code == 403
    assert client.post("/p/acme/members/", {"username": "x", "role": "admin"}).status_code == 403


def test_an_admin_cannot_touch_another_projects_membership(client_for, member):
    admin = member("admin")
    foreign = MembershipFactory(project=ProjectFactory(slug="other"), role="viewer")
    response = client_for(admin).post(f"/p/acme/members/{foreign.pk}/role/", {"role": "admin"})
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.role == "viewer"


def test_creating_a_project_makes_the_creator_its_admin(client_for):
    user = UserFactory()
    response = client_for(user).post("/projects/new/", {"name": "Fresh Ideas"})
    assert response.status_code == 302
    assert Membership.objects.get(user=user, project__slug="fresh-ideas").role == "admin"


def test_removing_a_member_revokes_the_keys_they_created_here_and_audits_it(client_for, member, project, settings):
    from apps.accounts.models import ApiKey
    from apps.accounts.services import api_key_create
    from apps.api import cache

    settings.API_CACHE_POLL_MS = 0  # every request re-reads the database stamp, as after the 500 ms poll
    cache.clear()

    admin, leaver = member("admin", "boss"), member("admin", "leaver")
    kept, _ = api_key_create(project=project, name="ci", scope="read", actor=admin)
    gone, raw = api_key_create(project=project, name="laptop", scope="write", actor=leaver)
    elsewhere = ProjectFactory(slug="other")
    MembershipFactory(project=elsewhere, user=leaver, role="admin")
    other, _ = api_key_create(project=elsewhere, name="other", scope="read", actor=leaver)
    api = Client()
    assert api.get("/api/v1/prompts", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200

    membership = Membership.objects.get(user=leaver, project=project)
    response = client_for(admin).post(f"/p/acme/members/{membership.pk}/remove/", follow=True)

    assert "leaver removed from the project; the 1 API key(s) they created here were revoked" in response.text
    assert api.get("/api/v1/prompts", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    assert ApiKey.objects.get(pk=gone.pk).revoked_reason == "leaver was removed from the project"
    assert ApiKey.objects.get(pk=kept.pk).is_active and ApiKey.objects.get(pk=other.pk).is_active
    event = AuditEvent.objects.get(action="api_key.revoked")
    assert (event.object_id, event.actor_repr, event.after) == (
        str(gone.pk),
        "boss",
        {"reason": "leaver was removed from the project"},
    )
    listing = client_for(admin).get("/p/acme/api-keys/").text
    assert "leaver was removed from the project" in listing
