"""The board's pages and JSON endpoints, through Django's test client."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from agents.models import Agent
from deployments.models import Environment, Release
from tasks import services
from tasks.board_selectors import PAGE_SIZE
from tasks.models import Task, TaskEvent, TaskFeedback, TaskQuestion
from tasks.states import TaskState
from tests import factories

S = TaskState
pytestmark = pytest.mark.django_db


def _move(client: Client, task: Task, body: object, **extra) -> object:
    url = reverse("board-move", args=[task.project.slug, task.pk])
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", **extra)


def test_pages_need_a_login(client, project):
    task = factories.make_task(project=project)
    for url in [
        reverse("projects"),
        reverse("board", args=[project.slug]),
        reverse("board-task", args=[project.slug, task.pk]),
        reverse("board-task-create", args=[project.slug]),
    ]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")
    response = _move(client, task, {"to_state": "in_progress"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.state == S.BACKLOG


def test_login_and_logout(client, member):
    response = client.post("/login/", {"username": "member", "password": "pw-for-tests"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused(client, member):
    response = client.post("/login/", {"username": "member", "password": "nope"})
    assert response.status_code == 200
    assert b"did not match" in response.content
    assert "_auth_user_id" not in client.session


def test_projects_page_counts_and_chart(member_client, project):
    factories.make_task(project=project)
    task = services.task_create(project=project, title="Live", actor=factories.system())
    agent, _ = factories.make_agent()
    services.task_transition(
        task_id=task.pk, to_state=S.IN_PROGRESS, actor=factories.system(), agent_id=agent.pk
    )
    response = member_client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert project.name in html
    assert '<td data-state="backlog">1</td>' in html
    assert '<td data-state="in_progress">1</td>' in html
    assert html.count('<polygon class="band') == 8
    assert "<svg" in html


def test_board_columns_in_spec_order_with_counts_and_wip(member_client, project):
    project.wip_limits = {"in_progress": 1}
    project.save()
    factories.make_task(project=project, state=S.IN_PROGRESS, title="one")
    factories.make_task(project=project, state=S.IN_PROGRESS, title="two")
    factories.make_task(project=project, title="three")
    response = member_client.get(reverse("board", args=[project.slug]))
    html = response.content.decode()
    positions = [html.index(f'data-state="{s}" data-limit') for s in S.values]
    assert positions == sorted(positions)
    assert 'class="column st-in_progress over-limit at-limit"' in html
    assert 'class="column st-backlog"' in html
    assert "/ 1</span>" in html


def test_card_shows_badges(member_client, project):
    agent, _ = factories.make_agent(name="claude-1")
    dep = factories.make_task(project=project, title="dependency")
    task = factories.make_task(
        project=project,
        title="Has everything",
        state=S.NEEDS_INPUT,
        assigned_agent=agent,
        pr_url="https://git.example/pr/7",
        pr_number=7,
        preview_url="https://task-1.preview.example",
    )
    task.depends_on.add(dep)
    TaskQuestion.objects.create(task=task, agent=agent, question="Which colour?")
    TaskFeedback.objects.create(task=task, body="Rename the button")
    factories.make_task(project=project, parent=task, state=S.STAGING)
    factories.make_task(project=project, parent=task)
    response = member_client.get(reverse("board-card", args=[project.slug, task.pk]))
    payload = response.json()
    html = payload["html"]
    assert payload["state"] == S.NEEDS_INPUT
    assert payload["counts"]["backlog"] == 2
    for text in [
        "needs input",
        "feedback",
        "blocked",
        "1/2 subtasks",
        "PR #7",
        "preview",
        "claude-1",
    ]:
        assert text in html


def test_legal_move_persists(member_client, project):
    task = factories.make_task(project=project)
    agent, _ = factories.make_agent()
    # Starting a task names its agent (the board's start dialog); without one nothing moves.
    refused = _move(member_client, task, {"to_state": "in_progress"})
    assert refused.status_code == 409 and "needs an agent" in refused.json()["detail"]
    assert refused.json()["card"]["state"] == "backlog"
    response = _move(member_client, task, {"to_state": "in_progress", "agent": agent.pk})
    assert response.status_code == 200
    assert response.json()["state"] == "in_progress"
    assert response.json()["counts"]["in_progress"] == 1
    task.refresh_from_db()
    assert task.state == S.IN_PROGRESS
    assert TaskEvent.objects.filter(task=task, kind="status_changed").count() == 1


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"to_state": "production"}, 409, "Allowed from 'backlog': cancelled, in_progress"),
        ({"to_state": "nowhere"}, 400, "Unknown state 'nowhere'"),
        ({"to_state": 5}, 400, "Unknown state"),
        ({}, 400, "Unknown state"),
        ("{not json", 400, "not valid JSON"),
        ("[1, 2]", 400, "must be a JSON object"),
        ({"to_state": "in_progress", "note": "x" * 20_001}, 400, "too long"),
    ],
)
def test_bad_moves_change_nothing(member_client, project, body, status, detail):
    task = factories.make_task(project=project)
    before = TaskEvent.objects.count()
    response = _move(member_client, task, body)
    assert response.status_code == status
    assert detail in response.json()["detail"]
    task.refresh_from_db()
    assert task.state == S.BACKLOG
    assert TaskEvent.objects.count() == before


def test_refused_move_returns_the_card_to_snap_back(member_client, project):
    task = factories.make_task(project=project)
    payload = _move(member_client, task, {"to_state": "approved"}).json()
    assert payload["allowed"] == ["cancelled", "in_progress"]
    assert payload["card"]["state"] == "backlog"


def test_move_needs_permission(member_client, approver_client, project):
    task = factories.make_task(project=project, state=S.READY_TO_TEST)
    response = _move(member_client, task, {"to_state": "approved"})
    assert response.status_code == 403
    task.refresh_from_db()
    assert task.state == S.READY_TO_TEST
    assert _move(approver_client, task, {"to_state": "approved"}).status_code == 200


def test_move_of_another_projects_task_is_404(member_client, project):
    other = factories.make_task()
    url = reverse("board-move", args=[project.slug, other.pk])
    response = member_client.post(url, '{"to_state": "in_progress"}', "application/json")
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.state == S.BACKLOG


def test_move_without_csrf_token_is_refused(member, project):
    task = factories.make_task(project=project)
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert _move(client, task, {"to_state": "in_progress"}).status_code == 403
    task.refresh_from_db()
    assert task.state == S.BACKLOG


def test_wip_limit_refuses_move_with_message(member_client, project):
    project.wip_limits = {"in_progress": 1}
    project.save()
    factories.make_task(project=project, state=S.IN_PROGRESS)
    task = factories.make_task(project=project)
    response = _move(member_client, task, {"to_state": "in_progress"})
    assert response.status_code == 409
    assert "WIP limit of 1" in response.json()["detail"]
    task.refresh_from_db()
    assert task.state == S.BACKLOG


def test_board_query_count_is_constant(member_client, project, django_assert_num_queries):
    """The board with 1,000 tasks renders with as many queries as with 10."""
    agent, _ = factories.make_agent()
    url = reverse("board", args=[project.slug])

    def fill(n: int) -> None:
        states = S.values
        made = Task.objects.bulk_create(
            Task(
                project=project,
                title=f"bulk {i}",
                state=states[i % len(states)],
                priority=i % 4,
                assigned_agent=agent if i % 3 == 0 else None,
                position=i,
            )
            for i in range(n)
        )
        TaskQuestion.objects.bulk_create(TaskQuestion(task=t, question="?") for t in made[::7])
        TaskFeedback.objects.bulk_create(TaskFeedback(task=t, body="fix") for t in made[::11])
        made[1].depends_on.add(made[2])
        Task.objects.filter(pk__in=[t.pk for t in made[5::13]]).update(parent=made[0])

    fill(10)
    member_client.get(url)  # warm the session and permission caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert member_client.get(url).status_code == 200
    # Issue 8's budget, the session, user and permission lookups included.
    assert len(small.captured_queries) <= 10
    fill(990)
    assert Task.objects.filter(project=project).count() == 1000
    with django_assert_num_queries(len(small.captured_queries)):
        response = member_client.get(url)
    assert response.status_code == 200
    # About 125 tasks per column; each shows its first page and says how many more there are.
    html = response.content.decode()
    assert html.count('class="card prio-') == 8 * PAGE_SIZE
    counts = [int(n) for n in re.findall(r'title="tasks in this column">(\d+)<', html)]
    more = [int(n) for n in re.findall(r'<span class="more-count">(\d+)<', html)]
    assert sum(counts) == 1000
    assert more == [n - PAGE_SIZE for n in counts]


def test_resync_fragment_is_the_columns_of_the_page(approver_client, project):
    """What a reconnecting board fetches is exactly what the page holds in #board-columns."""
    project.wip_limits = {"in_progress": 0}
    project.save()
    agent, _ = factories.make_agent(name="claude <7>")
    factories.make_task(project=project, state=S.IN_PROGRESS, assigned_agent=agent)
    factories.make_task(project=project, state=S.APPROVED, title='Ship <it> & "go"')
    url = reverse("board", args=[project.slug])
    page = approver_client.get(url).content.decode()
    fragment = approver_client.get(url, {"fragment": "columns"})
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert "<html" not in html and html.count('<section class="column') == 8
    assert f'<div id="board-columns">{html}</div>' in page
    assert 'class="column st-in_progress over-limit at-limit"' in html
    assert "claude &lt;7&gt;" in html and "Ship &lt;it&gt; &amp; &quot;go&quot;" in html
    assert 'class="small merge-to-staging"' in html and 'class="small promote"' in html


def test_header_buttons_follow_permissions(member_client, project):
    html = member_client.get(reverse("board", args=[project.slug])).content.decode()
    assert 'class="small merge-to-staging"' not in html and 'class="small promote"' not in html


def test_board_names_the_latest_staging_release_for_promote(member_client, project):
    url = reverse("board", args=[project.slug])
    assert 'data-staging-release=""' in member_client.get(url).content.decode()
    other = factories.make_project()
    Release.objects.create(project=project, environment=Environment.STAGING)
    latest = Release.objects.create(project=project, environment=Environment.STAGING)
    Release.objects.create(project=project, environment=Environment.PRODUCTION)
    Release.objects.create(project=other, environment=Environment.STAGING)
    html = member_client.get(url).content.decode()
    assert f'data-staging-release="{latest.pk}"' in html


def test_first_page_is_in_claim_order_with_ties(member_client, project):
    """Priority, then position, then age, then id: the order the claim query uses."""
    first, second, third = (factories.make_task(project=project, position=1) for _ in range(3))
    urgent = factories.make_task(project=project, position=9, priority=3)
    # The third task is the oldest, though its id is the highest.
    Task.objects.filter(pk=third.pk).update(created_at=first.created_at - timedelta(days=1))
    Task.objects.filter(pk=second.pk).update(created_at=first.created_at)
    html = member_client.get(reverse("board", args=[project.slug])).content.decode()
    ids = [int(x) for x in re.findall(r'<article class="card[^"]*" id="task-(\d+)"', html)]
    assert ids == [urgent.pk, third.pk, first.pk, second.pk]


def test_show_more_pages_a_column_in_claim_order(member_client, project):
    made = Task.objects.bulk_create(
        Task(project=project, title=f"bulk {i}", priority=i % 4, position=i)
        for i in range(PAGE_SIZE + 7)
    )
    expected = [
        t.pk for t in sorted(made, key=lambda t: (-t.priority, t.position, t.created_at, t.pk))
    ]
    board_html = member_client.get(reverse("board", args=[project.slug])).content.decode()
    url = reverse("board-column-more", args=[project.slug, "backlog"])
    more = member_client.get(url, {"offset": PAGE_SIZE})
    assert more.status_code == 200
    more_html = more.content.decode()
    ids = [int(x) for x in re.findall(r'<article class="card[^"]*" id="task-(\d+)"', board_html)]
    ids += [int(x) for x in re.findall(r'<article class="card[^"]*" id="task-(\d+)"', more_html)]
    assert ids == expected
    assert member_client.get(url, {"offset": 10_000}).content == b""


@pytest.mark.parametrize("offset", ["-1", "x", "99999999999"])
def test_show_more_refuses_bad_offsets(member_client, project, offset):
    url = reverse("board-column-more", args=[project.slug, "backlog"])
    response = member_client.get(url, {"offset": offset})
    assert response.status_code == 400
    assert b"offset" in response.content


def test_show_more_of_unknown_column_is_404(member_client, project):
    url = reverse("board-column-more", args=[project.slug, "nowhere"])
    assert member_client.get(url).status_code == 404


def test_task_detail_shows_actions_by_permission(member_client, approver_client, project):
    task = factories.make_task(project=project, state=S.READY_TO_TEST, description="Do it")
    url = reverse("board-task", args=[project.slug, task.pk])
    member_html = member_client.get(url).content.decode()
    approver_html = approver_client.get(url).content.decode()
    assert 'id="approve"' not in member_html
    assert 'id="approve"' in approver_html
    assert 'id="request-changes"' in member_html
    assert 'id="cancel"' in member_html and 'id="reopen"' not in member_html
    cancelled = factories.make_task(project=project, state=S.CANCELLED)
    html = member_client.get(reverse("board-task", args=[project.slug, cancelled.pk])).content
    assert b'id="reopen"' in html and b'id="cancel"' not in html
    prod = factories.make_task(project=project, state=S.PRODUCTION)
    html = approver_client.get(reverse("board-task", args=[project.slug, prod.pk])).content
    assert b'id="task-actions"' not in html


def test_task_detail_of_unknown_task_is_404(member_client, project):
    other = factories.make_task()
    assert (
        member_client.get(reverse("board-task", args=[project.slug, other.pk])).status_code == 404
    )
    assert member_client.get(reverse("board", args=["no-such"])).status_code == 404


def _agent_with_question(project, count: int = 1) -> tuple[Task, list[TaskQuestion]]:
    agent, _ = factories.make_agent()
    task = factories.make_task(project=project)
    task = services.task_claim_next(agent=agent, project=project)
    asked = [
        services.question_ask(task_id=task.pk, agent=agent, question=f"Q{i}?") for i in range(count)
    ]
    return task, asked


def test_answering_the_last_question_returns_to_in_progress(member_client, member, project):
    task, (first, second) = _agent_with_question(project, count=2)
    url = lambda q: reverse("board-answer", args=[project.slug, task.pk, q.pk])  # noqa: E731
    member_client.post(url(first), {"answer": "Blue"})
    task.refresh_from_db()
    assert task.state == S.NEEDS_INPUT
    response = member_client.post(url(second), {"answer": "Yes"}, follow=True)
    assert b"Answer sent" in response.content
    task.refresh_from_db()
    assert task.state == S.IN_PROGRESS
    second.refresh_from_db()
    assert second.answer == "Yes" and second.answered_by == member


def test_empty_or_repeated_answer_changes_nothing(member_client, project):
    task, (question,) = _agent_with_question(project)
    url = reverse("board-answer", args=[project.slug, task.pk, question.pk])
    response = member_client.post(url, {"answer": "   "}, follow=True)
    assert b"answer is required" in response.content
    question.refresh_from_db()
    assert question.is_open
    member_client.post(url, {"answer": "ok"})
    before = TaskEvent.objects.count()
    response = member_client.post(url, {"answer": "again"}, follow=True)
    assert b"already answered" in response.content
    question.refresh_from_db()
    assert question.answer == "ok"
    assert TaskEvent.objects.count() == before


def test_approve_request_changes_cancel_reopen(approver_client, member_client, project):
    worker, _ = factories.make_agent()
    task = factories.make_task(project=project, state=S.READY_TO_TEST, assigned_agent=worker)
    action = lambda name: reverse("board-task-action", args=[project.slug, task.pk, name])  # noqa: E731
    response = member_client.post(action("approve"), follow=True)
    # A member may not approve: 403, naming the role that may.
    assert response.status_code == 403
    assert b"needs the &#x27;reviewer&#x27; role" in response.content
    task.refresh_from_db()
    assert task.state == S.READY_TO_TEST
    member_client.post(action("request-changes"), {"feedback": ""})
    task.refresh_from_db()
    assert task.state == S.READY_TO_TEST and not task.feedback.exists()
    member_client.post(action("request-changes"), {"feedback": "Make it blue"})
    task.refresh_from_db()
    assert task.state == S.IN_PROGRESS
    assert task.feedback.get().body == "Make it blue"
    member_client.post(action("cancel"))
    task.refresh_from_db()
    assert task.state == S.CANCELLED
    member_client.post(action("reopen"))
    task.refresh_from_db()
    assert task.state == S.BACKLOG
    assert member_client.post(action("explode")).status_code == 404


def test_create_and_edit_task(member_client, member, project):
    url = reverse("board-task-create", args=[project.slug])
    response = member_client.post(url, {"title": "  New thing ", "description": "d", "priority": 2})
    task = Task.objects.get(project=project)
    assert response["Location"] == reverse("board-task", args=[project.slug, task.pk])
    assert (task.title, task.priority, task.created_by) == ("New thing", 2, member)
    edit = reverse("board-task-edit", args=[project.slug, task.pk])
    member_client.post(edit, {"title": "Renamed", "description": "", "priority": 3})
    task.refresh_from_db()
    assert (task.title, task.description, task.priority) == ("Renamed", "", 3)


@pytest.mark.parametrize(
    "data",
    [
        {"title": "", "priority": 1},
        {"title": "   ", "priority": 1},
        {"title": "x" * 201, "priority": 1},
        {"title": "ok", "priority": 9},
        {"title": "ok", "priority": "high"},
        {"title": "ok", "priority": 1, "description": "d" * 20_001},
    ],
)
def test_bad_task_forms_change_nothing(member_client, project, data):
    task = factories.make_task(project=project, title="Keep")
    before = (Task.objects.count(), TaskEvent.objects.count())
    response = member_client.post(reverse("board-task-create", args=[project.slug]), data)
    assert response.status_code == 400
    assert b"field-error" in response.content or b"msg-error" in response.content
    response = member_client.post(reverse("board-task-edit", args=[project.slug, task.pk]), data)
    assert response.status_code == 400
    task.refresh_from_db()
    assert task.title == "Keep"
    assert (Task.objects.count(), TaskEvent.objects.count()) == before


def test_no_secret_on_pages(member_client, project):
    factories.make_task(project=project)
    agent, token = factories.make_agent()
    for url in ["/", reverse("board", args=[project.slug])]:
        html = member_client.get(url).content.decode()
        assert project.webhook_secret not in html
        assert token not in html and Agent.objects.get(pk=agent.pk).token_hash not in html
    assert User.objects.count() >= 1


def test_form_encoded_move_is_a_400_not_a_crash(member_client, project):
    task = factories.make_task(project=project)
    url = reverse("board-move", args=[project.slug, task.pk])
    response = member_client.post(url, {"to_state": "in_progress"})
    assert response.status_code == 400
    assert "application/json" in response.json()["detail"]
    task.refresh_from_db()
    assert task.state == S.BACKLOG


def test_task_page_timeline_is_paged_newest_first(member_client, project):
    task = factories.make_task(project=project)
    for i in range(120):
        services.record_event(
            task=task, kind="progress", actor=factories.system(), message=f"step {i}"
        )
    url = reverse("board-task", args=[project.slug, task.pk])
    first = member_client.get(url).content.decode()
    assert "step 119" in first and "step 70" in first and "step 69" not in first
    assert "Page 1 of 3" in first
    last = member_client.get(url, {"events": 3}).content.decode()
    assert "step 0" in last and "step 119" not in last
    # A page out of range or not a number shows the nearest page, never an error.
    assert member_client.get(url, {"events": "x"}).status_code == 200
    assert "Page 3 of 3" in member_client.get(url, {"events": 99}).content.decode()
