"""The task list runs a fixed number of queries, however many tasks there are (STYLE: reads)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks.models import Task, TaskQuestion
from tests.factories import make_agent, make_project, make_user

# session + user (authentication), count, page, dependencies prefetch.
LIST_QUERIES = 5


def _fill(n: int) -> None:
    """`n` tasks spread over 2 projects and 2 agents, each with a dependency and a question."""
    projects = [make_project(), make_project()]
    agents = [make_agent()[0], make_agent()[0]]
    tasks = Task.objects.bulk_create(
        Task(
            project=projects[i % 2],
            title=f"Task {i}",
            state="in_progress" if i % 3 == 0 else "backlog",
            assigned_agent=agents[i % 2] if i % 3 == 0 else None,
            position=i,
        )
        for i in range(n)
    )
    through = Task.depends_on.through
    through.objects.bulk_create(
        through(from_task_id=t.pk, to_task_id=tasks[i - 2].pk)
        for i, t in enumerate(tasks)
        if i >= 2
    )
    TaskQuestion.objects.bulk_create(TaskQuestion(task=t, question="Q?") for t in tasks[::2])


@pytest.mark.parametrize("n", [5, 500])
def test_task_list_query_count_is_constant(db, client, django_assert_num_queries, n):
    client.force_login(make_user())
    _fill(n)
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/api/tasks/?limit=500")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == n
    assert len(body["results"]) == n
    assert sum(1 for row in body["results"] if row["depends_on"]) == n - 2
    assert sum(row["open_questions"] for row in body["results"]) == (n + 1) // 2


@pytest.mark.parametrize("n", [5, 60])
def test_filtered_list_query_count_is_constant(db, client, django_assert_num_queries, n):
    client.force_login(make_user())
    _fill(n)
    slug = Task.objects.order_by("pk").first().project.slug
    # One more for the project named by slug in the filter.
    with django_assert_num_queries(LIST_QUERIES + 1):
        response = client.get(f"/api/tasks/?project={slug}&state=backlog&search=Task")
    assert response.status_code == 200


def test_task_detail_query_count(db, client, django_assert_num_queries):
    client.force_login(make_user())
    _fill(30)
    task = Task.objects.order_by("-pk").first()
    with CaptureQueriesContext(connection) as ctx:
        client.get(f"/api/tasks/{task.pk}/")
    few = len(ctx.captured_queries)
    TaskQuestion.objects.bulk_create(TaskQuestion(task=task, question=f"Q{i}") for i in range(20))
    with django_assert_num_queries(few):
        response = client.get(f"/api/tasks/{task.pk}/")
    assert len(response.json()["questions"]) == task.questions.count() >= 20
