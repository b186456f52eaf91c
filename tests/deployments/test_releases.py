"""Releases on the gitops driver: deploy, supersede, roll back; 403 without the permission."""

import pytest
from rest_framework.test import APIClient

from aiworker import errors
from aiworker.actors import Actor
from deployments import services
from deployments.models import Deployment, Release
from tasks.models import Task, TaskEvent
from tests import factories


@pytest.fixture
def prod(gitops, preview_project):
    def release(image_tag):
        r = Release.objects.create(
            project=preview_project,
            environment="production",
            image=f"registry.example.test/acme/shop:{image_tag}",
            commit_sha=image_tag,
        )
        return services.release_deploy(release_id=r.pk)

    return release


def deployed_image(gitops, project):
    doc = gitops.read(f"production/{project.slug}/04-deployment-app.yaml")
    return doc["spec"]["template"]["spec"]["containers"][0]["image"]


def test_release_deploy_makes_it_live_and_supersedes_the_previous(gitops, prod, preview_project):
    first = prod("1111111")
    assert first.status == "live" and first.deployed_at
    second = prod("2222222")
    first.refresh_from_db()
    assert (first.status, second.status) == ("superseded", "live")
    assert deployed_image(gitops, preview_project).endswith(":2222222")
    assert gitops.directories() == [f"production/{preview_project.slug}"]
    ns = gitops.read(
        f"production/{preview_project.slug}/00-namespace-{preview_project.slug}-production.yaml"
    )
    assert ns["metadata"]["name"] == f"{preview_project.slug}-production"
    assert Deployment.objects.filter(status="ready").count() == 1


def test_rollback_restores_the_previous_image(gitops, prod, preview_project, approver):
    prod("1111111")
    second = prod("2222222")
    restored = services.release_rollback(release_id=second.pk, actor=Actor.of_user(approver))
    second.refresh_from_db()
    assert restored.status == "live"
    assert restored.image.endswith(":1111111") and restored.rollback_of_id == second.pk
    assert second.status == "rolled_back"
    assert deployed_image(gitops, preview_project).endswith(":1111111")
    with pytest.raises(errors.Conflict):
        services.release_rollback(release_id=second.pk, actor=Actor.of_user(approver))


def test_rollback_without_an_earlier_release_is_a_conflict(gitops, prod, approver):
    only = prod("1111111")
    with pytest.raises(errors.Conflict, match="no earlier"):
        services.release_rollback(release_id=only.pk, actor=Actor.of_user(approver))
    only.refresh_from_db()
    assert only.status == "live" and Release.objects.count() == 1


def test_rollback_api_without_permission_is_403_and_changes_nothing(
    gitops, prod, user, preview_project
):
    prod("1111111")
    second = prod("2222222")
    commits = gitops.commits()
    before = list(Release.objects.values_list("pk", "status").order_by("pk"))
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(f"/api/releases/{second.pk}/rollback/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert list(Release.objects.values_list("pk", "status").order_by("pk")) == before
    assert gitops.commits() == commits
    assert deployed_image(gitops, preview_project).endswith(":2222222")


def test_rollback_api_with_permission_answers_201(gitops, prod, approver):
    prod("1111111")
    second = prod("2222222")
    client = APIClient()
    client.force_authenticate(approver)
    response = client.post(f"/api/releases/{second.pk}/rollback/", {"confirm": True}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["image"].endswith(":1111111")
    assert client.post("/api/releases/999999/rollback/").status_code == 404


def test_promote_without_permission_is_403_and_changes_nothing(gitops, preview_project, user):
    staging = Release.objects.create(
        project=preview_project, environment="staging", image="r/x:1111111"
    )
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(f"/api/releases/{staging.pk}/promote/")
    assert response.status_code == 403
    assert list(Release.objects.values_list("pk", "environment", "status")) == [
        (staging.pk, "staging", "pending")
    ]
    assert Deployment.objects.count() == 0


def test_release_list_filters(gitops, prod, preview_project, user):
    prod("1111111")
    other = factories.make_project()
    Release.objects.create(project=other, environment="staging", image="r/y:1")
    client = APIClient()
    client.force_authenticate(user)
    body = client.get("/api/releases/", {"project": preview_project.pk}).json()
    assert [r["project"] for r in body["results"]] == [preview_project.pk]
    assert client.get("/api/releases/", {"environment": "preview"}).status_code == 400


def _task_in(project, state, title):
    return factories.make_task(project=project, state=state, title=title)


def test_rollback_needs_a_confirmation_then_sends_its_tasks_back_to_staging(
    gitops, prod, preview_project, approver
):
    old = _task_in(preview_project, "production", "Old feature")
    first = prod("1111111")
    first.tasks.set([old])
    new = _task_in(preview_project, "staging", "New feature")
    staging = Release.objects.create(
        project=preview_project, environment="staging", image="r/x:2222222", status="live"
    )
    staging.tasks.set([new])
    second = Release.objects.create(
        project=preview_project, environment="production", image="r/x:2222222"
    )
    second.tasks.set([new])
    services.release_deploy(release_id=second.pk)
    assert Task.objects.get(pk=new.pk).state == "production"
    client = APIClient()
    client.force_authenticate(approver)
    before = list(Release.objects.values_list("pk", "status").order_by("pk"))
    commits = gitops.commits()

    refused = client.post(f"/api/releases/{second.pk}/rollback/", {}, format="json")

    assert refused.status_code == 400
    assert f"#{new.pk} New feature" in refused.json()["detail"]
    assert list(Release.objects.values_list("pk", "status").order_by("pk")) == before
    assert gitops.commits() == commits
    assert Task.objects.get(pk=new.pk).state == "production"

    done = client.post(f"/api/releases/{second.pk}/rollback/", {"confirm": True}, format="json")

    assert done.status_code == 201, done.json()
    assert Task.objects.get(pk=new.pk).state == "staging"
    assert Task.objects.get(pk=old.pk).state == "production"
    line = TaskEvent.objects.filter(task=new, to_state="staging").latest("pk")
    assert f"release {second.pk} rolled back" in line.message
    assert deployed_image(gitops, preview_project).endswith(":1111111")
    # Promoting again is possible: the staging release's task is in staging once more.
    assert list(staging.tasks.filter(state="staging")) == [Task.objects.get(pk=new.pk)]


def test_release_urls_come_from_the_settings_or_are_derived(gitops, prod, settings):
    derived = prod("1111111").deployments.get()
    assert derived.url == f"https://{derived.project.slug}-production.preview.example.test/"
    settings.PRODUCTION_URL = "https://shop.example.test/"
    assert prod("2222222").deployments.get().url == "https://shop.example.test/"
