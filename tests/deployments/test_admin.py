"""Admin actions call the deployment services; refusals become messages and change nothing."""

from django.contrib.auth.models import User

from deployments import services
from deployments.models import Deployment, Release
from tests import factories


def test_admin_extend_and_destroy_actions(client, gitops, preview_task):
    admin_user = User.objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(admin_user)
    deployment = services.preview_deploy(task_id=preview_task.pk, actor=factories.system())
    before = deployment.expires_at
    url = "/admin/deployments/deployment/"
    client.post(url, {"action": "extend_ttl", "_selected_action": [deployment.pk]})
    deployment.refresh_from_db()
    assert deployment.expires_at > before
    client.post(url, {"action": "destroy_preview", "_selected_action": [deployment.pk]})
    deployment.refresh_from_db()
    assert deployment.status == "destroyed" and gitops.files() == []


def test_admin_rollback_needs_the_permission(client, gitops, preview_project):
    staff = factories.make_user(
        is_staff=True, perms=("deployments.view_release", "deployments.change_release")
    )
    client.force_login(staff)
    first = Release.objects.create(
        project=preview_project, environment="production", image="r/x:1111111"
    )
    services.release_deploy(release_id=first.pk)
    second = Release.objects.create(
        project=preview_project, environment="production", image="r/x:2222222"
    )
    services.release_deploy(release_id=second.pk)
    response = client.post(
        "/admin/deployments/release/",
        {"action": "rollback_release", "_selected_action": [second.pk]},
        follow=True,
    )
    assert "permission" in response.content.decode()
    assert Release.objects.count() == 2
    assert Deployment.objects.filter(status="ready").get().image == "r/x:2222222"
