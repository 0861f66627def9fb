"""The one role check every app's services use, and its one Forbidden error."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from apps.accounts.permissions import Forbidden, require_role, role_of
from apps.accounts.services import api_key_create

pytestmark = pytest.mark.django_db


def test_it_allows_the_role_and_every_role_above_it(project, member):
    reviewer = member("reviewer", "rita")
    assert require_role(project_id=project.pk, actor=reviewer, role="editor", what="Rating outputs") == "reviewer"


def test_it_refuses_a_lower_role_and_a_stranger_naming_who_and_what(project, member, django_user_model):
    viewer = member("viewer", "vic")
    with pytest.raises(Forbidden, match="Rating outputs needs the editor role; vic is viewer."):
        require_role(project_id=project.pk, actor=viewer, role="editor", what="Rating outputs")
    stranger = django_user_model.objects.create_user("sam")
    with pytest.raises(Forbidden, match="sam is not a member of this project."):
        require_role(project_id=project.pk, actor=stranger, role="viewer", what="Reading")
    assert issubclass(Forbidden, PermissionDenied)  # pages and the API answer 403 without catching it


def test_an_api_key_acts_with_its_creators_role_and_a_job_with_none(project, member):
    admin = member("admin", "ada")
    key, _raw = api_key_create(project=project, name="ci", scope="write", actor=admin)
    assert role_of(project_id=project.pk, actor=key) == "admin"
    assert role_of(project_id=project.pk, actor="nightly job") is None
    with pytest.raises(Forbidden, match="nightly job is not a member"):
        require_role(project_id=project.pk, actor="nightly job", role="viewer", what="Reading")
