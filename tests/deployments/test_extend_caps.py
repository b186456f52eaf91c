"""Preview extensions are capped by hours (PREVIEW_EXTEND_MAX_HOURS) and by count
(PREVIEW_EXTEND_MAX_COUNT). An attacker asking for 99999999999 hours, or extending once too
often, gets a clear refusal (400 or 409 in the API, a message on the page), never a 500, and
the preview's expiry, manifests and timeline stay as they were."""

import html
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from deployments import services
from deployments.models import Deployment
from projects.models import Membership
from tasks.models import TaskEvent
from tests import factories


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def deployment(gitops, preview_task):
    return services.preview_deploy(task_id=preview_task.pk, actor=factories.system())


def _state(deployment):
    row = Deployment.objects.get(pk=deployment.pk)
    return row.expires_at, row.manifests, TaskEvent.objects.count()


@pytest.mark.parametrize(
    "hours", [99999999999, 10**30, 721, 0, -5, "x", 1.5, True, None, [24], {"h": 1}]
)
def test_rest_extend_out_of_range_is_400_and_changes_nothing(api, deployment, hours):
    before = _state(deployment)
    answer = api.post(f"/api/deployments/{deployment.pk}/extend/", {"hours": hours}, format="json")
    assert answer.status_code == 400
    body = answer.json()
    assert "hours" in body["errors"]
    if isinstance(hours, int) and not isinstance(hours, bool):
        assert "from 1 to 720 hours (PREVIEW_EXTEND_MAX_HOURS)" in body["detail"]
    assert _state(deployment) == before


def test_the_hours_cap_is_a_setting(api, deployment, settings):
    settings.PREVIEW_EXTEND_MAX_HOURS = 48
    before = _state(deployment)
    url = f"/api/deployments/{deployment.pk}/extend/"
    refused = api.post(url, {"hours": 49}, format="json")
    assert refused.status_code == 400 and "from 1 to 48 hours" in refused.json()["detail"]
    assert _state(deployment) == before
    assert api.post(url, {"hours": 48}, format="json").status_code == 200


def test_extends_beyond_the_count_are_409_and_change_nothing(api, deployment, settings):
    settings.PREVIEW_EXTEND_MAX_COUNT = 2
    url = f"/api/deployments/{deployment.pk}/extend/"
    assert [api.post(url, {"hours": 1}, format="json").status_code for _ in range(2)] == [200, 200]
    before = _state(deployment)
    refused = api.post(url, {"hours": 1}, format="json")
    assert refused.status_code == 409
    assert "already extended 2 times" in refused.json()["detail"]
    assert "PREVIEW_EXTEND_MAX_COUNT" in refused.json()["detail"]
    assert _state(deployment) == before


def test_the_page_refuses_a_huge_extension_with_a_message(client, deployment, user):
    client.force_login(user)
    slug = deployment.project.slug
    before = _state(deployment)
    for hours in ("99999999999", "1" + "0" * 40, "-1", "abc"):
        answer = client.post(
            f"/projects/{slug}/deployments/{deployment.pk}/extend/", {"hours": hours}, follow=True
        )
        assert answer.status_code == 200
        page = answer.content.decode()
        assert "PREVIEW_EXTEND_MAX_HOURS" in page or "whole number" in page
        assert _state(deployment) == before


def test_the_default_extension_stays_within_the_cap(deployment, settings):
    """The admin's action extends by one TTL; a TTL longer than the cap extends by the cap."""
    settings.PREVIEW_TTL_DURATION = timedelta(days=60)
    settings.PREVIEW_EXTEND_MAX_HOURS = 24
    before = Deployment.objects.get(pk=deployment.pk).expires_at
    extended = services.preview_extend(deployment_id=deployment.pk, actor=factories.system())
    assert extended.expires_at - before == timedelta(hours=24)


def test_the_deployments_page_asks_the_roles(client, deployment, settings):
    """Someone outside the project gets 403 naming the role, not its previews; a viewer sees
    the page but no Roll back button, and cannot extend."""
    settings.PROJECT_DEFAULT_ROLE = ""
    project = deployment.project
    stranger = factories.make_user()
    client.force_login(stranger)
    refused = client.get(f"/projects/{project.slug}/deployments/")
    assert refused.status_code == 403
    assert deployment.url not in refused.content.decode()
    viewer = factories.make_user()
    Membership.objects.create(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    page = client.get(f"/projects/{project.slug}/deployments/")
    assert page.status_code == 200 and "Roll back" not in page.content.decode()
    before = _state(deployment)
    answer = client.post(
        f"/projects/{project.slug}/deployments/{deployment.pk}/extend/", {"hours": "1"}, follow=True
    )
    assert "'member' role" in html.unescape(answer.content.decode())
    assert _state(deployment) == before
