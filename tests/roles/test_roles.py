"""Per-project roles (SPEC §13), each attack through the real surface: a normal login of a
non-member or a viewer is refused with 403 (naming the role) and nothing changes."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from deployments.models import Release
from projects.models import Membership, Project
from tasks.models import Task, TaskEvent
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def membership_decides(settings):
    settings.PROJECT_DEFAULT_ROLE = ""  # tests/conftest.py gives older tests a member's rights


def _api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _with_role(project, role):
    user = factories.make_user()
    Membership.objects.create(project=project, user=user, role=role)
    return user


def _snapshot(task):
    task.refresh_from_db()
    return (task.state, task.title, task.description, task.priority, TaskEvent.objects.count())


def test_lists_show_only_the_users_projects_and_their_tasks():
    mine, theirs = factories.make_project(), factories.make_project()
    user = _with_role(mine, "viewer")
    factories.make_task(project=mine)
    hidden = factories.make_task(project=theirs)
    api = _api(user)
    projects = api.get("/api/projects/").json()
    slugs = {p["slug"] for p in projects.get("results", projects)}
    assert slugs == {mine.slug}
    tasks = api.get("/api/tasks/").json()
    ids = {t["id"] for t in tasks.get("results", tasks)}
    assert hidden.pk not in ids and len(ids) == 1
    assert api.get(f"/api/tasks/{hidden.pk}/").status_code == 404
    assert api.get(f"/api/projects/{theirs.pk}/").status_code == 404
    page = Client()
    page.force_login(user)
    html = page.get("/").content.decode()
    assert mine.name in html and theirs.name not in html


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("transition/", {"to_state": "cancelled"}),
        ("approve/", {}),
        ("request-changes/", {"feedback": "do it again"}),
    ],
)
def test_a_viewer_cannot_act_on_a_task_over_rest(path, body):
    project = factories.make_project()
    task = factories.make_task(project=project, state="ready_to_test", title="Keep me")
    before = _snapshot(task)
    response = _api(_with_role(project, "viewer")).post(
        f"/api/tasks/{task.pk}/{path}", body, format="json"
    )
    assert response.status_code == 403, response.json()
    assert "role" in response.json()["detail"]
    assert _snapshot(task) == before


def test_a_viewer_cannot_edit_or_create_and_the_message_names_the_role():
    project = factories.make_project()
    task = factories.make_task(project=project, title="Keep me")
    before = _snapshot(task)
    api = _api(_with_role(project, "viewer"))
    response = api.patch(f"/api/tasks/{task.pk}/", {"title": "pwned"}, format="json")
    assert response.status_code == 403
    assert "'member' role" in response.json()["detail"]
    response = api.post("/api/tasks/", {"project": project.slug, "title": "x"}, format="json")
    assert response.status_code == 403
    assert _snapshot(task) == before
    assert Task.objects.count() == 1


def test_a_non_member_cannot_touch_another_projects_task():
    task = factories.make_task(title="Keep me")
    before = _snapshot(task)
    api = _api(factories.make_user())
    for path, body in [("transition/", {"to_state": "cancelled"}), ("approve/", {})]:
        assert api.post(f"/api/tasks/{task.pk}/{path}", body, format="json").status_code == 404
    assert api.patch(f"/api/tasks/{task.pk}/", {"title": "x"}, format="json").status_code == 404
    response = api.post("/api/tasks/", {"project": task.project.slug, "title": "x"}, format="json")
    assert response.status_code == 400
    assert _snapshot(task) == before
    assert Task.objects.count() == 1


def test_a_member_edits_but_only_a_reviewer_approves():
    project = factories.make_project()
    task = factories.make_task(project=project, state="ready_to_test")
    member = _api(_with_role(project, "member"))
    assert (
        member.patch(f"/api/tasks/{task.pk}/", {"title": "New"}, format="json").status_code == 200
    )
    response = member.post(f"/api/tasks/{task.pk}/approve/", {}, format="json")
    assert response.status_code == 403
    assert "'reviewer' role" in response.json()["detail"]
    task.refresh_from_db()
    assert task.state == "ready_to_test"
    reviewer = _api(_with_role(project, "reviewer"))
    assert reviewer.post(f"/api/tasks/{task.pk}/approve/", {}, format="json").status_code == 200
    task.refresh_from_db()
    assert task.state == "approved"


def test_a_reviewer_in_one_project_cannot_approve_in_another():
    mine, theirs = factories.make_project(), factories.make_project()
    user = _with_role(mine, "reviewer")
    Membership.objects.create(project=theirs, user=user, role="member")
    task = factories.make_task(project=theirs, state="ready_to_test")
    response = _api(user).post(f"/api/tasks/{task.pk}/approve/", {}, format="json")
    assert response.status_code == 403
    task.refresh_from_db()
    assert task.state == "ready_to_test"


def test_a_reviewer_cannot_merge_promote_or_roll_back():
    project = factories.make_project()
    task = factories.make_task(project=project, state="approved")
    release = Release.objects.create(project=project, environment="staging")
    api = _api(_with_role(project, "reviewer"))
    response = api.post("/api/releases/merge-to-staging/", {"task_ids": [task.pk]}, format="json")
    assert response.status_code == 403
    assert "'releaser' role" in response.json()["detail"]
    assert api.post(f"/api/releases/{release.pk}/promote/").status_code == 403
    assert api.post(f"/api/releases/{release.pk}/rollback/").status_code == 403
    task.refresh_from_db()
    assert task.state == "approved"
    assert Release.objects.count() == 1


def test_only_a_project_admin_changes_the_project():
    project = factories.make_project(name="Old")
    response = _api(_with_role(project, "releaser")).patch(
        f"/api/projects/{project.pk}/", {"name": "New"}, format="json"
    )
    assert response.status_code == 403
    assert "'admin' role" in response.json()["detail"]
    project.refresh_from_db()
    assert project.name == "Old"
    response = _api(_with_role(project, "admin")).patch(
        f"/api/projects/{project.pk}/", {"name": "New"}, format="json"
    )
    assert response.status_code == 200
    assert Project.objects.get(pk=project.pk).name == "New"


def test_a_viewer_cannot_register_an_agent_for_the_project():
    from agents.models import Agent

    project = factories.make_project()
    response = _api(_with_role(project, "member")).post(
        "/api/agents/", {"name": "sneaky", "project": project.slug}, format="json"
    )
    assert response.status_code == 403
    assert "'admin' role" in response.json()["detail"]
    assert not Agent.objects.filter(name="sneaky").exists()


def test_the_board_refuses_a_non_member_and_a_viewers_move():
    project = factories.make_project()
    task = factories.make_task(project=project, title="Keep me")
    before = _snapshot(task)
    outsider = Client()
    outsider.force_login(factories.make_user())
    assert outsider.get(f"/projects/{project.slug}/board/").status_code == 403
    assert outsider.get(f"/projects/{project.slug}/tasks/{task.pk}/").status_code == 403
    viewer = Client()
    viewer.force_login(_with_role(project, "viewer"))
    board = viewer.get(f"/projects/{project.slug}/board/")
    assert board.status_code == 200
    assert b'class="card' in board.content and b'class="move-to"' not in board.content
    member = Client()
    member.force_login(_with_role(project, "member"))
    assert b'class="move-to"' in member.get(f"/projects/{project.slug}/board/").content
    response = viewer.post(
        f"/projects/{project.slug}/tasks/{task.pk}/move/",
        {"to_state": "cancelled"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "'member' role" in response.json()["detail"]
    response = viewer.post(f"/projects/{project.slug}/tasks/{task.pk}/cancel/")
    assert response.status_code == 403
    response = viewer.post(
        f"/projects/{project.slug}/tasks/{task.pk}/edit/", {"title": "x", "priority": "low"}
    )
    assert response.status_code == 403
    assert _snapshot(task) == before


def test_the_task_page_offers_only_what_the_user_may_do():
    project = factories.make_project()
    task = factories.make_task(project=project, state="ready_to_test")
    member = Client()
    member.force_login(_with_role(project, "member"))
    html = member.get(f"/projects/{project.slug}/tasks/{task.pk}/").content.decode()
    assert "/approve/" not in html and "request-changes" in html
    reviewer = Client()
    reviewer.force_login(_with_role(project, "reviewer"))
    html = reviewer.get(f"/projects/{project.slug}/tasks/{task.pk}/").content.decode()
    assert "/approve/" in html


def test_a_superuser_may_do_everything_without_a_membership():
    project = factories.make_project()
    task = factories.make_task(project=project, state="ready_to_test")
    root = _api(factories.make_user(is_superuser=True, is_staff=True))
    assert root.post(f"/api/tasks/{task.pk}/approve/", {}, format="json").status_code == 200


def test_each_role_holds_what_the_ones_below_hold():
    from projects import roles

    project = factories.make_project()
    users = {role: _with_role(project, role) for role in roles.role_names()}
    for perm, (least, _global) in roles.PERMISSIONS.items():
        for role, user in users.items():
            expected = roles.RANK[role] >= roles.RANK[least]
            assert user.has_perm(perm, project) is expected, (perm, role)
            assert user.has_perm(perm, factories.make_project()) is False
