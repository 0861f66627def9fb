import pytest

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
