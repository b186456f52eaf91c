"""Found by schemathesis: an id beyond 64 bits, of either sign, in a list filter or a body
reached the query, and SQLite raised OverflowError (a 500) where MariaDB matches nothing. Such an
id is now a 400 naming the field (so are 0 and negative ids in the task filters, like the
deployment filters), and the largest id there can be still answers normally."""

import pytest
from rest_framework.test import APIClient

from aiworker.api import ID_MAX
from deployments.models import Release
from tasks.models import Task
from tests import factories

pytestmark = pytest.mark.django_db

TOO_BIG = ID_MAX + 1


@pytest.fixture
def admin_api(db) -> APIClient:
    client = APIClient()
    client.force_login(factories.make_user(is_superuser=True, is_staff=True))
    return client


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/tasks/?agent={}", "agent"),
        ("/api/tasks/?parent={}", "parent"),
        ("/api/deployments/?task={}", "task"),
        ("/api/deployments/?project={}", "project"),
        ("/api/releases/?project={}", "project"),
    ],
)
def test_list_filter_with_an_id_beyond_64_bits_is_refused(admin_api, path, field):
    for beyond in (TOO_BIG, -TOO_BIG * 10**6, 0):
        answer = admin_api.get(path.format(beyond))
        assert answer.status_code == 400, (beyond, answer.content)
        assert answer.json()["code"] == "invalid"
        assert list(answer.json()["errors"]) == [field]
    assert admin_api.get(path.format(ID_MAX)).status_code == 200


def test_bodies_with_an_id_beyond_64_bits_are_refused_and_change_nothing(admin_api):
    task = factories.make_task()
    before = (Task.objects.count(), list(task.depends_on.all()), Release.objects.count())

    created = admin_api.post(
        "/api/tasks/",
        {"project": task.project.slug, "title": "t", "depends_on": [TOO_BIG]},
        format="json",
    )
    dependencies = admin_api.put(
        f"/api/tasks/{task.pk}/dependencies/", {"depends_on": [TOO_BIG]}, format="json"
    )
    merged = admin_api.post(
        "/api/releases/merge-to-staging/", {"task_ids": [TOO_BIG]}, format="json"
    )

    for answer, field in (
        (created, "depends_on"),
        (dependencies, "depends_on"),
        (merged, "task_ids"),
    ):
        assert answer.status_code == 400, answer.content
        assert answer.json()["code"] == "invalid"
        assert list(answer.json()["errors"]) == [field]
    assert (Task.objects.count(), list(task.depends_on.all()), Release.objects.count()) == before
    # The largest possible id is well-formed: refused only because it names no task.
    unknown = admin_api.put(
        f"/api/tasks/{task.pk}/dependencies/", {"depends_on": [ID_MAX]}, format="json"
    )
    assert (unknown.status_code, unknown.json()["code"]) == (400, "invalid"), unknown.content
    assert unknown.json()["errors"] == {"depends_on": [f"Unknown: {ID_MAX}."]}


@pytest.mark.parametrize("path", ["/api/projects/", "/api/agents/"])
def test_a_limit_beyond_64_bits_is_capped_like_every_list(admin_api, path):
    """Projects and agents paginated without a ceiling: the limit reached the query and
    overflowed it (SQLite "datatype mismatch", MariaDB a syntax error)."""
    factories.make_project()
    factories.make_agent()
    answer = admin_api.get(path, {"limit": TOO_BIG})
    assert answer.status_code == 200, answer.content
    assert answer.json()["count"] == len(answer.json()["results"]) >= 1
