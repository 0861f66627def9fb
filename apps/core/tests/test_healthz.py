import pytest


@pytest.mark.django_db
def test_it_reports_every_part_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok", "cache": "ok"}


@pytest.mark.django_db
def test_it_names_the_part_that_is_down(client, monkeypatch):
    from apps.core import health

    monkeypatch.setitem(health.CHECKS, "cache", lambda: "ConnectionError: refused")
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["cache"] == "down"
    assert body["database"] == "ok"
    assert "refused" in body["errors"]["cache"]
