"""Cards show the status of their task's latest preview deployment (SPEC §10, issue 6)."""

from deployments.models import Deployment, Driver, Environment
from tests.factories import make_task


def test_card_shows_latest_preview_status(client, user, project):
    with_preview = make_task(
        project=project, state="ready_to_test", preview_url="https://task-1.preview.localhost"
    )
    without = make_task(project=project)
    for status in ("failed", "ready"):  # the latest one counts
        Deployment.objects.create(
            project=project,
            task=with_preview,
            environment=Environment.PREVIEW,
            driver=Driver.GITOPS,
            namespace=f"preview-task-{with_preview.pk}",
            status=status,
        )
    client.force_login(user)
    html = client.get(f"/projects/{project.slug}/board/").content.decode()
    card = html.split(f'data-task-id="{with_preview.pk}"', 1)[1].split("</article>", 1)[0]
    assert "preview ready" in card and "preview failed" not in card
    other = html.split(f'data-task-id="{without.pk}"', 1)[1].split("</article>", 1)[0]
    assert "badge deploy" not in other


def test_a_failed_preview_says_why_on_its_card(client, user, project):
    task = make_task(project=project, state="ready_to_test")
    Deployment.objects.create(
        project=project,
        task=task,
        environment=Environment.PREVIEW,
        driver=Driver.GITOPS,
        namespace=f"preview-task-{task.pk}",
        status="failed",
        error='Application argocd/preview-task-1: Argo CD reports Degraded: <b>"ImagePullBackOff"',
    )
    client.force_login(user)
    html = client.get(f"/projects/{project.slug}/board/").content.decode()
    card = html.split(f'data-task-id="{task.pk}"', 1)[1].split("</article>", 1)[0]
    assert "preview failed" in card
    assert 'title="preview failed: Application argocd/preview-task-1: Argo CD reports' in card
    assert "&lt;b&gt;&quot;ImagePullBackOff&quot;" in card and "<b>" not in card
