from unittest import mock

from django.db import connection


def test_health_reports_every_backing_service(client, db):
    response = client.get("/api/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "channel_layer", "broker"}
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["channel_layer"] == "ok"


def test_health_answers_503_when_the_database_is_down(client, db):
    with mock.patch.object(connection, "cursor", side_effect=Exception("down")):
        response = client.get("/api/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "error: Exception"
