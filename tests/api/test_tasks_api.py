"""Happy paths of /api/tasks/ and its actions (SPEC §7)."""

from tasks.models import Task, TaskEvent, TaskFeedback, TaskQuestion
from tasks.states import TaskState
from tests.factories import make_agent, make_project, make_task

S = TaskState


def test_create_task_by_slug_with_spec_and_dependencies(api, project, user):
    dep = make_task(project=project)
    response = api.post(
        "/api/tasks/",
        {
            "project": project.slug,
            "title": "  Add login  ",
            "description": "With OAuth",
            "priority": 2,
            "depends_on": [dep.pk],
            "spec": {"goals": "Users log in", "complexity": "small"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    task = Task.objects.get(pk=body["id"])
    assert (task.title, task.priority, task.state, task.created_by) == (
        "Add login",
        2,
        "backlog",
        user,
    )
    assert body["depends_on"] == [dep.pk]
    assert body["dependencies"] == [{"id": dep.pk, "title": dep.title, "state": "backlog"}]
    assert body["spec"]["goals"] == "Users log in"
    assert body["spec"]["complexity"] == "small"
    assert body["project_slug"] == project.slug
    assert TaskEvent.objects.filter(task=task, kind="created").count() == 1


def test_create_task_by_project_id(api, project):
    response = api.post("/api/tasks/", {"project": project.pk, "title": "T"}, format="json")
    assert response.status_code == 201
    assert response.json()["project"] == project.pk


def test_list_filters_search_ordering_and_pagination(api, project):
    other = make_project()
    agent, _ = make_agent()
    a = make_task(project=project, title="Alpha login", priority=0)
    b = make_task(project=project, title="Beta", description="login page", priority=3)
    c = make_task(project=project, title="Gamma", state=S.IN_PROGRESS, assigned_agent=agent)
    d = make_task(project=other, title="Delta", parent=None)
    sub = make_task(project=project, title="Sub", parent=a)

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/tasks/?{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert set(ids(f"project={project.slug}")) == {a.pk, b.pk, c.pk, sub.pk}
    assert set(ids(f"project={other.pk}")) == {d.pk}
    assert ids("state=in_progress") == [c.pk]
    assert set(ids("state=in_progress&state=backlog")) == {a.pk, b.pk, c.pk, d.pk, sub.pk}
    assert ids(f"agent={agent.pk}") == [c.pk]
    assert ids(f"parent={a.pk}") == [sub.pk]
    assert set(ids("search=login")) == {a.pk, b.pk}
    assert ids(f"project={project.slug}&state=backlog&ordering=-priority")[:2] == [b.pk, sub.pk]
    page = api.get("/api/tasks/?limit=2&offset=1&ordering=id").json()
    assert page["count"] == 5
    assert [r["id"] for r in page["results"]] == sorted([a.pk, b.pk, c.pk, d.pk, sub.pk])[1:3]


def test_list_row_shape(api, project):
    agent, _ = make_agent()
    task = make_task(project=project, state=S.IN_PROGRESS, assigned_agent=agent)
    TaskQuestion.objects.create(task=task, agent=agent, question="Which DB?")
    row = api.get("/api/tasks/").json()["results"][0]
    assert row["assigned_agent"] == {"id": agent.pk, "name": agent.name}
    assert row["open_questions"] == 1
    assert row["state"] == "in_progress"


def test_retrieve_has_questions_and_dependencies(api, project):
    dep = make_task(project=project, title="Dep")
    task = make_task(project=project)
    task.depends_on.add(dep)
    child = make_task(project=project, parent=task)
    q = TaskQuestion.objects.create(task=task, question="Colour?", options=["red", "blue"])
    body = api.get(f"/api/tasks/{task.pk}/").json()
    assert body["dependencies"] == [{"id": dep.pk, "title": "Dep", "state": "backlog"}]
    assert body["subtasks"] == [child.pk]
    assert body["questions"][0]["id"] == q.pk
    assert body["questions"][0]["options"] == ["red", "blue"]
    assert body["questions"][0]["is_open"] is True
    assert api.get(f"/api/tasks/{dep.pk}/").json()["dependents"] == [task.pk]


def test_patch_updates_through_the_service(api, project):
    task = make_task(project=project, title="Old")
    response = api.patch(
        f"/api/tasks/{task.pk}/",
        {"title": "New", "priority": 3, "spec": {"context": "ctx"}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    task.refresh_from_db()
    assert (task.title, task.priority, task.spec_context) == ("New", 3, "ctx")
    assert TaskEvent.objects.filter(task=task, kind="edited").count() == 1


def test_transition_and_refusal_names_allowed_targets(api, project):
    task = make_task(project=project)
    agent, _ = make_agent()
    # Starting a task names its agent; without one it is refused and nothing changes.
    response = api.post(f"/api/tasks/{task.pk}/transition/", {"to_state": "in_progress"})
    assert response.status_code == 409 and "needs an agent" in response.json()["detail"]
    task.refresh_from_db()
    assert (task.state, task.assigned_agent_id) == ("backlog", None)
    response = api.post(
        f"/api/tasks/{task.pk}/transition/",
        {"to_state": "in_progress", "note": "go", "agent": agent.pk},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "in_progress"
    task.refresh_from_db()
    assert task.assigned_agent_id == agent.pk and task.lease_expires_at is not None

    response = api.post(f"/api/tasks/{task.pk}/transition/", {"to_state": "production"})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "transition_not_allowed"
    assert body["allowed"] == ["backlog", "cancelled", "ready_to_test"]
    task.refresh_from_db()
    assert task.state == "in_progress"


def test_plain_move_to_staging_or_production_is_refused_naming_the_action(api, project):
    approved = make_task(project=project, state=S.APPROVED)
    staged = make_task(project=project, state=S.STAGING)
    for task, target, action in (
        (approved, "staging", "Merge to staging"),
        (staged, "production", "Promote"),
    ):
        response = api.post(f"/api/tasks/{task.pk}/transition/", {"to_state": target})
        assert response.status_code == 409
        assert f"use {action}" in response.json()["detail"]
        before = task.state
        task.refresh_from_db()
        assert task.state == before and task.events.count() == 0


def test_questions_list_and_answer_resumes_task(api, project, user):
    agent, _ = make_agent()
    task = make_task(project=project, state=S.NEEDS_INPUT, assigned_agent=agent)
    q = TaskQuestion.objects.create(task=task, agent=agent, question="Which DB?")
    listed = api.get(f"/api/tasks/{task.pk}/questions/").json()
    assert [row["id"] for row in listed] == [q.pk]

    response = api.post(f"/api/tasks/{task.pk}/questions/{q.pk}/answer/", {"answer": "MariaDB"})
    assert response.status_code == 200, response.json()
    assert response.json()["answer"] == "MariaDB"
    assert response.json()["answered_by"] == user.username
    task.refresh_from_db()
    assert task.state == "in_progress"


def test_approve_needs_permission(api, approver, project):
    from rest_framework.test import APIClient

    task = make_task(project=project, state=S.READY_TO_TEST)
    response = api.post(f"/api/tasks/{task.pk}/approve/")
    assert response.status_code == 403
    assert "tasks.approve_task" in response.json()["detail"]
    task.refresh_from_db()
    assert task.state == "ready_to_test"

    client = APIClient()
    client.force_login(approver)
    response = client.post(f"/api/tasks/{task.pk}/approve/", {"note": "LGTM"})
    assert response.status_code == 200, response.json()
    task.refresh_from_db()
    assert task.state == "approved"


def test_request_changes_leaves_feedback(api, project):
    agent, _ = make_agent()
    task = make_task(project=project, state=S.READY_TO_TEST, assigned_agent=agent)
    response = api.post(f"/api/tasks/{task.pk}/request-changes/", {"feedback": "Button is off"})
    assert response.status_code == 200, response.json()
    task.refresh_from_db()
    assert (task.state, task.assigned_agent_id) == ("in_progress", agent.pk)
    assert TaskFeedback.objects.get(task=task).body == "Button is off"


def test_request_changes_with_a_busy_agent_goes_to_the_backlog_with_the_feedback(api, project):
    agent, _ = make_agent()
    make_task(project=project, state=S.IN_PROGRESS, assigned_agent=agent)  # busy elsewhere
    task = make_task(project=project, state=S.READY_TO_TEST, assigned_agent=agent)
    response = api.post(f"/api/tasks/{task.pk}/request-changes/", {"feedback": "Button is off"})
    assert response.status_code == 200, response.json()
    task.refresh_from_db()
    assert (task.state, task.assigned_agent_id) == ("backlog", None)
    assert TaskFeedback.objects.get(task=task, seen_at__isnull=True).body == "Button is off"
    assert "already holds" in task.events.last().message


def test_put_dependencies_replaces_them(api, project):
    a, b, c = (make_task(project=project) for _ in range(3))
    a.depends_on.add(b)
    response = api.put(f"/api/tasks/{a.pk}/dependencies/", {"depends_on": [c.pk]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["depends_on"] == [c.pk]
    assert list(a.depends_on.values_list("pk", flat=True)) == [c.pk]
    response = api.put(f"/api/tasks/{a.pk}/dependencies/", {"depends_on": []}, format="json")
    assert response.status_code == 200
    assert a.depends_on.count() == 0


def test_events_timeline(api, project):
    task = make_task(project=project)
    agent, _ = make_agent()
    api.post(f"/api/tasks/{task.pk}/transition/", {"to_state": "in_progress", "agent": agent.pk})
    api.post(f"/api/tasks/{task.pk}/transition/", {"to_state": "backlog", "note": "later"})
    body = api.get(f"/api/tasks/{task.pk}/events/").json()
    assert body["count"] == 2
    rows = body["results"]
    assert [(r["from_state"], r["to_state"]) for r in rows] == [
        ("backlog", "in_progress"),
        ("in_progress", "backlog"),
    ]
    assert rows[1]["message"] == "later"
    assert rows[0]["actor_kind"] == "user"
