"""The deployments page: environments, previews, history, and its two buttons."""

from datetime import timedelta

from deployments import services
from deployments.models import Release
from tests import factories


def test_page_shows_previews_releases_and_history(
    client, gitops, preview_task, approver, django_assert_max_num_queries
):
    services.preview_deploy(task_id=preview_task.pk, actor=factories.system())
    release = Release.objects.create(
        project=preview_task.project,
        environment="production",
        image="registry.example.test/acme/shop:1111111",
    )
    services.release_deploy(release_id=release.pk)
    client.force_login(approver)
    # 13: the newest releases for "Releases in progress" (their tasks only when one is).
    with django_assert_max_num_queries(13):
        response = client.get(f"/projects/{preview_task.project.slug}/deployments/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f"https://task-{preview_task.pk}.preview.example.test/" in page
    assert "Roll back" in page and "Extend 7 days" in page
    assert "shop:1111111" in page


def test_extend_button_and_rollback_without_permission(client, gitops, preview_task, user):
    deployment = services.preview_deploy(task_id=preview_task.pk, actor=factories.system())
    client.force_login(user)
    slug = preview_task.project.slug
    response = client.post(
        f"/projects/{slug}/deployments/{deployment.pk}/extend/", {"hours": "24"}, follow=True
    )
    assert response.status_code == 200
    deployment.refresh_from_db()
    assert "Preview kept until" in response.content.decode()
    before = deployment.expires_at
    client.post(f"/projects/{slug}/deployments/{deployment.pk}/extend/", {"hours": "x"})
    deployment.refresh_from_db()
    assert deployment.expires_at == before

    first = Release.objects.create(
        project=preview_task.project, environment="production", image="r/x:1111111"
    )
    services.release_deploy(release_id=first.pk)
    second = Release.objects.create(
        project=preview_task.project, environment="production", image="r/x:2222222"
    )
    services.release_deploy(release_id=second.pk)
    response = client.post(f"/projects/{slug}/releases/{second.pk}/rollback/", follow=True)
    assert "permission" in response.content.decode()
    assert Release.objects.count() == 2
    second.refresh_from_db()
    assert second.status == "live"
    assert before - deployment.created_at > timedelta(0)
