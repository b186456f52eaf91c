"""The pod endpoints of /api/agents/, against the stand-in Kubernetes API server (tests/agents/
kube_standin.py) — no cluster runs here."""

from agents.models import Agent
from tests.agents.conftest import NAMESPACE
from tests.factories import make_user


def test_pods_off_answers_503_and_creates_nothing(client, project, settings):
    settings.AGENT_POD_NAMESPACE = ""
    client.force_login(make_user(perms=("agents.add_agent",)))
    response = client.post(
        "/api/agents/pods/", {"project": project.slug}, content_type="application/json"
    )
    assert response.status_code == 503
    assert "AGENT_POD_NAMESPACE" in response.json()["detail"]
    assert Agent.objects.count() == 0


def test_create_and_delete_a_pod_through_the_api(kube, client, project):
    client.force_login(make_user(perms=("agents.add_agent", "agents.change_agent")))
    response = client.post(
        "/api/agents/pods/", {"project": project.slug}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert "token" not in body and body["pod_namespace"] == NAMESPACE
    assert set(kube.pods(NAMESPACE)) == {body["pod_name"]}

    response = client.post(f"/api/agents/{body['id']}/pod/delete/")
    assert response.status_code == 200
    assert response.json()["status"] == "offline" and response.json()["is_revoked"] is True
    assert kube.pods(NAMESPACE) == {}


def test_pod_endpoints_refuse_bad_input_and_missing_permission(kube, client, project):
    client.force_login(make_user())
    assert (
        client.post(
            "/api/agents/pods/", {"project": project.slug}, content_type="application/json"
        ).status_code
        == 403
    )
    client.force_login(make_user(perms=("agents.add_agent", "agents.change_agent")))
    for body in ({}, {"project": "nope"}, {"project": 5.5}, {"project": project.slug, "x": 1}):
        response = client.post("/api/agents/pods/", body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
    assert client.post("/api/agents/999999/pod/delete/").status_code == 404
    assert Agent.objects.count() == 0
    assert kube.pods(NAMESPACE) == {}
