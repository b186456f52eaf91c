"""REST surface of deployments: list/filter, deploy-preview, extend; bad input changes nothing."""

import pytest
from rest_framework.test import APIClient

from deployments import jobs, services
from deployments.models import Deployment
from tasks.models import TaskEvent
from tests import factories


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_deploy_preview_answers_202_with_the_url(api, gitops, preview_task, monkeypatch):
    queued = []
    monkeypatch.setattr(jobs.deploy_preview, "delay", lambda **kw: queued.append(kw))
    response = api.post(f"/api/tasks/{preview_task.pk}/deploy-preview/", {}, format="json")
    assert response.status_code == 202
    assert response.json() == {
        "task_id": preview_task.pk,
        "url": f"https://task-{preview_task.pk}.preview.example.test/",
    }
    assert queued == [{"task_id": preview_task.pk, "commit_sha": "a" * 40}]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"commit_sha": "zz"}, 400),
        ({"commit_sha": 12}, 400),
        ({"unknown": 1}, 400),
    ],
)
def test_deploy_preview_bad_input_changes_nothing(
    api, gitops, preview_task, body, status, monkeypatch
):
    queued = []
    monkeypatch.setattr(jobs.deploy_preview, "delay", lambda **kw: queued.append(kw))
    response = api.post(f"/api/tasks/{preview_task.pk}/deploy-preview/", body, format="json")
    assert response.status_code == status
    assert queued == [] and Deployment.objects.count() == 0


def test_deploy_preview_unknown_task_is_404_and_disabled_is_503(api, settings, preview_task):
    assert api.post("/api/tasks/999999/deploy-preview/", {}, format="json").status_code == 404
    settings.DEPLOY_DRIVER = "disabled"
    response = api.post(f"/api/tasks/{preview_task.pk}/deploy-preview/", {}, format="json")
    assert response.status_code == 503
    assert "DEPLOY_DRIVER" in response.json()["detail"]
    assert Deployment.objects.count() == 0


def test_list_filter_and_extend(api, gitops, preview_task, django_assert_max_num_queries):
    deployment = services.preview_deploy(task_id=preview_task.pk, actor=factories.system())
    other = factories.make_task(
        project=factories.make_project(image_repository="r/y"),
        state="in_progress",
        head_sha="c" * 40,
    )
    services.preview_deploy(task_id=other.pk, actor=factories.system())
    with django_assert_max_num_queries(4):
        body = api.get("/api/deployments/", {"project": preview_task.project_id}).json()
    assert [d["id"] for d in body["results"]] == [deployment.pk]
    assert body["results"][0]["url"] == f"https://task-{preview_task.pk}.preview.example.test/"
    assert api.get("/api/deployments/", {"status": "nope"}).status_code == 400
    assert api.get(f"/api/deployments/{deployment.pk}/").json()["status"] == "ready"

    before = Deployment.objects.get(pk=deployment.pk).expires_at
    response = api.post(f"/api/deployments/{deployment.pk}/extend/", {"hours": 24}, format="json")
    assert response.status_code == 200
    after = Deployment.objects.get(pk=deployment.pk).expires_at
    assert (after - before).total_seconds() == 24 * 3600

    events = TaskEvent.objects.count()
    for bad in ({"hours": 0}, {"hours": "x"}, {"hours": 10**6}):
        assert (
            api.post(f"/api/deployments/{deployment.pk}/extend/", bad, format="json").status_code
            == 400
        )
    assert Deployment.objects.get(pk=deployment.pk).expires_at == after
    assert TaskEvent.objects.count() == events
    assert api.post("/api/deployments/999999/extend/", {}, format="json").status_code == 404


def test_extend_a_destroyed_preview_is_409(api, gitops, preview_task):
    deployment = services.preview_deploy(task_id=preview_task.pk, actor=factories.system())
    services.preview_destroy(task_id=preview_task.pk, actor=factories.system())
    response = api.post(f"/api/deployments/{deployment.pk}/extend/", {}, format="json")
    assert response.status_code == 409
    assert Deployment.objects.get(pk=deployment.pk).status == "destroyed"


def test_anonymous_is_refused(client, preview_task):
    assert client.get("/api/deployments/").status_code in (401, 403)
