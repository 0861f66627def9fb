"""The audit page shows each event's before and after as readable fields, the changed ones marked."""

import pytest

from apps.audit.services import audit_record

pytestmark = pytest.mark.django_db


def test_before_and_after_read_as_fields_not_python_dicts(client_for, member, project):
    admin = member("admin", "ada")
    audit_record(
        project_id=project.pk, actor=admin, action="label.moved", object_type="label", object_id="1",
        object_repr="greet:production", before={"version": 1, "protected": True, "note": None},
        after={"version": 2, "protected": True, "note": None, "tags": ["a", "b"]},
    )  # fmt: skip
    html = client_for(admin).get(f"/p/{project.slug}/audit/").content.decode()
    table = html[html.index('class="table table-sm audit-table"') :]
    assert "{&#x27;" not in table and "{'" not in table and "True" not in table
    assert '<div class="changed"><span class="text-muted">version:</span> 2</div>' in table
    assert '<div><span class="text-muted">protected:</span> yes</div>' in table
    assert "note:</span> —" in table and "tags:</span> [&quot;a&quot;, &quot;b&quot;]" in table
