"""Happy paths of /api/projects/, /api/agents/ and /api/auth/token/."""

from rest_framework.test import APIClient

from agents.models import Agent
from agents.services import agent_authenticate, hash_token
from projects.models import Project
from tests.factories import make_agent, make_project, make_user


def test_project_create_list_retrieve_update(admin_api):
    response = admin_api.post(
        "/api/projects/",
        {
            "name": "Shop",
            "slug": "shop",
            "gitea_owner": "acme",
            "gitea_repo": "shop",
            "preview_env": {"DEBUG": "1"},
            "wip_limits": {"in_progress": 2},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    project = Project.objects.get(slug="shop")
    assert project.wip_limit("in_progress") == 2
    assert project.webhook_secret  # generated, never shown
    assert "webhook_secret" not in response.json()

    listed = admin_api.get("/api/projects/").json()
    assert [p["slug"] for p in listed["results"]] == ["shop"]
    detail = admin_api.get(f"/api/projects/{project.pk}/").json()
    assert detail["has_repository"] is True
    assert "webhook_secret" not in detail
    assert project.webhook_secret not in str(listed) + str(detail)

    response = admin_api.patch(
        f"/api/projects/{project.pk}/", {"name": "Shop 2", "max_concurrent_agents": 5}
    )
    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert (project.name, project.max_concurrent_agents, project.slug) == ("Shop 2", 5, "shop")

    response = admin_api.put(
        f"/api/projects/{project.pk}/", {"name": "Shop 3", "slug": "shop3"}, format="json"
    )
    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert (project.name, project.slug) == ("Shop 3", "shop3")


def test_project_writes_need_model_permissions(api, project):
    before = list(Project.objects.values())
    assert api.post("/api/projects/", {"name": "X", "slug": "x"}).status_code == 403
    assert api.patch(f"/api/projects/{project.pk}/", {"name": "Y"}).status_code == 403
    assert list(Project.objects.values()) == before
    assert api.get(f"/api/projects/{project.pk}/").status_code == 200


def test_agent_create_returns_token_once(admin_api, project):
    response = admin_api.post(
        "/api/agents/",
        {"name": "claude-1", "project": project.slug, "capabilities": ["python"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    token = body["token"]
    agent = Agent.objects.get(pk=body["id"])
    assert agent.project == project
    assert agent_authenticate(token) == agent
    assert agent.token_hash == hash_token(token)
    assert "token_hash" not in body

    for url in ("/api/agents/", f"/api/agents/{agent.pk}/"):
        text = admin_api.get(url).content.decode()
        assert token not in text
        assert agent.token_hash not in text
        assert '"token"' not in text


def test_agent_list_retrieve_and_revoke(admin_api):
    agent, _ = make_agent()
    listed = admin_api.get("/api/agents/").json()
    assert [a["name"] for a in listed["results"]] == [agent.name]
    assert admin_api.get(f"/api/agents/{agent.pk}/").json()["is_revoked"] is False
    response = admin_api.post(f"/api/agents/{agent.pk}/revoke/")
    assert response.status_code == 200
    assert response.json()["is_revoked"] is True
    agent.refresh_from_db()
    assert agent.revoked_at is not None


def test_agent_writes_need_model_permissions(api):
    agent, _ = make_agent()
    before = list(Agent.objects.values())
    assert api.post("/api/agents/", {"name": "x"}).status_code == 403
    assert api.post(f"/api/agents/{agent.pk}/revoke/").status_code == 403
    assert list(Agent.objects.values()) == before
    assert api.get("/api/agents/").status_code == 200


def test_obtain_token_then_use_it(db):
    make_user(username="alice")
    client = APIClient()
    response = client.post(
        "/api/auth/token/", {"username": "alice", "password": "pw-for-tests"}, format="json"
    )
    assert response.status_code == 200, response.json()
    key = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/tasks/").status_code == 200
    make_project()
    assert client.get("/api/projects/").json()["count"] == 1


def test_obtain_token_wrong_password(db):
    make_user(username="bob")
    response = APIClient().post(
        "/api/auth/token/", {"username": "bob", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()  # the API's one error shape, like every other refusal
    assert body["code"] == "invalid"
    assert body["detail"] == "Unable to log in with provided credentials."
    assert "non_field_errors" in body["errors"]
