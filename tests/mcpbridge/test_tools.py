"""Every work tool over streamable HTTP with the real MCP client: happy paths and refusals.

The server runs in a thread of the test process (conftest), so these tests commit their data
(`transactional_db`). Gitea is not running here: with GITEA_URL unset the integration tools
must answer "not configured", which is what these tests check.
"""

import pytest

from aiworker.actors import Actor
from tasks import services as task_services
from tasks.models import TaskEvent, TaskFeedback
from tests import factories
from tests.mcpbridge.conftest import call, http_client, run, snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_claim_work_and_complete_a_task(mcp_url):
    project = factories.make_project(gitea_owner="acme", gitea_repo="shop")
    low = factories.make_task(project=project, title="Low one", priority=0)
    task = factories.make_task(project=project, title="Fix the Login page!", priority=2)
    task_services.feedback_add(
        task_id=task.pk, source="person", author="ann", body="Mind mobile", actor=factories.system()
    )
    agent, token = factories.make_agent()

    async def scenario():
        async with http_client(mcp_url, token) as client:
            _, ctx0 = await call(client, "get_context")
            _, claimed = await call(client, "get_next_task")
            _, again = await call(client, "get_next_task")  # the held task, not a second one
            _, ctx = await call(client, "get_context")
            _, beat = await call(client, "heartbeat", status="busy", message="compiling")
            _, logged = await call(client, "log_progress", task_id=task.pk, message="tests pass")
            _, feedback = await call(client, "get_feedback", task_id=task.pk)
            _, feedback2 = await call(client, "get_feedback", task_id=task.pk)
            _, done = await call(client, "complete_task", task_id=task.pk, summary="Fixed.")
            return ctx0, claimed, again, ctx, beat, logged, feedback, feedback2, done

    ctx0, claimed, again, ctx, beat, logged, feedback, feedback2, done = run(scenario())
    assert ctx0["task"] is None
    assert claimed["task"]["id"] == task.pk  # priority first
    assert claimed["task"]["state"] == "in_progress"
    assert claimed["project"] == {
        "slug": project.slug,
        "name": project.name,
        "default_branch": "main",
    }
    assert claimed["repo_clone_url"] is None  # GITEA_URL unset
    assert claimed["branch"] == f"task/{task.pk}-fix-the-login-page"
    assert claimed["attempt"] == 1
    assert claimed["lease_expires_at"]
    assert [f["body"] for f in claimed["unseen_feedback"]] == ["Mind mobile"]
    assert again["task"]["id"] == task.pk
    assert ctx["task"]["id"] == task.pk and ctx["unseen_feedback"]  # still unseen
    assert beat["status"] == "busy" and beat["current_task_id"] == task.pk
    assert logged["event_id"] == TaskEvent.objects.get(kind="progress").pk
    assert [f["body"] for f in feedback["feedback"]] == ["Mind mobile"]
    assert feedback2["feedback"] == []
    assert done == {
        "task_id": task.pk,
        "state": "ready_to_test",
        "pr_url": None,
        "preview_url": None,
    }
    task.refresh_from_db()
    low.refresh_from_db()
    assert task.state == "ready_to_test" and low.state == "backlog"
    assert TaskEvent.objects.filter(task=task, to_state="ready_to_test", message="Fixed.").exists()
    assert TaskFeedback.objects.get().seen_at is not None
    agent.refresh_from_db()
    assert agent.status_message == "compiling" and agent.last_heartbeat_at is not None


def test_clone_url_comes_from_gitea_url(mcp_url, settings):
    settings.GITEA_URL = "https://git.example.com/"
    project = factories.make_project(gitea_owner="acme", gitea_repo="shop")
    factories.make_task(project=project)
    _, token = factories.make_agent()

    async def scenario():
        async with http_client(mcp_url, token) as client:
            return await call(client, "get_next_task", project=project.slug)

    error, claimed = run(scenario())
    assert not error
    assert claimed["repo_clone_url"] == "https://git.example.com/acme/shop.git"


def test_nothing_to_claim_answers_null(mcp_url):
    project = factories.make_project()
    blocker = factories.make_task(project=project)
    blocked = factories.make_task(project=project)
    blocked.depends_on.add(blocker)
    factories.make_task(project=project, state="in_progress")
    full = factories.make_project(wip_limits={"in_progress": 0})
    factories.make_task(project=full)
    _, token = factories.make_agent(project=project)
    task_services.task_transition(
        task_id=blocker.pk, to_state="cancelled", actor=factories.system()
    )
    before = snapshot()

    async def scenario():
        async with http_client(mcp_url, token) as client:
            return await call(client, "get_next_task")

    error, answer = run(scenario())
    assert not error
    assert answer["task"] is None and "No claimable task" in answer["message"]
    after = snapshot()
    assert after[0] == before[0] and after[1] == before[1]


def test_questions_and_answers(mcp_url):
    task = factories.make_task()
    _, token = factories.make_agent()
    user = factories.make_user()

    async def ask():
        async with http_client(mcp_url, token) as client:
            await call(client, "get_next_task")
            _, asked = await call(
                client, "ask_user_question", task_id=task.pk, question="Which DB?", options=["a"]
            )
            _, pending = await call(client, "check_response", question_id=asked["question_id"])
            return asked, pending

    asked, pending = run(ask())
    assert asked["state"] == "needs_input"
    assert pending["status"] == "pending" and pending["answer"] is None
    task_services.question_answer(
        question_id=asked["question_id"], actor=Actor.of_user(user), answer="MariaDB"
    )

    async def check():
        async with http_client(mcp_url, token) as client:
            _, answered = await call(
                client, "check_response", question_id=asked["question_id"], wait_seconds=5
            )
            _, ctx = await call(client, "get_context")
            return answered, ctx

    answered, ctx = run(check())
    assert answered["status"] == "answered" and answered["answer"] == "MariaDB"
    assert answered["answered_by"] == user.username
    assert ctx["task"]["state"] == "in_progress"
    assert [q["answer"] for q in ctx["answered_questions"]] == ["MariaDB"]


def test_release_then_claim_again_and_update_status(mcp_url):
    task = factories.make_task(priority=2)
    factories.make_task(project=task.project, priority=1)
    _, token = factories.make_agent()

    async def scenario():
        async with http_client(mcp_url, token) as client:
            await call(client, "get_next_task")
            _, released = await call(client, "release_task", task_id=task.pk, reason="stuck")
            _, claimed = await call(client, "get_next_task")
            _, moved = await call(
                client, "update_task_status", task_id=task.pk, status="ready_to_test", note="ok"
            )
            return released, claimed, moved

    released, claimed, moved = run(scenario())
    assert released == {"task_id": task.pk, "state": "backlog"}
    assert claimed["task"]["id"] == task.pk and claimed["attempt"] == 2
    assert moved == {"task_id": task.pk, "state": "ready_to_test", "from_state": "in_progress"}
    assert TaskEvent.objects.filter(task=task, to_state="backlog", message="stuck").exists()


def test_integration_tools_answer_not_configured(mcp_url, settings):
    settings.GITEA_URL = ""
    settings.DEPLOY_DRIVER = "disabled"
    # With a branch already (as after create_branch), so create_pull_request reaches the forge.
    task = factories.make_task(branch_name="task/1-pr")
    _, token = factories.make_agent()

    async def claim():
        async with http_client(mcp_url, token) as client:
            await call(client, "get_next_task")

    run(claim())
    before = snapshot()

    async def scenario():
        async with http_client(mcp_url, token) as client:
            return [
                await call(client, "create_branch", task_id=task.pk),
                await call(client, "create_pull_request", task_id=task.pk, title="PR"),
                await call(client, "trigger_preview_deploy", task_id=task.pk),
            ]

    answers = run(scenario())
    for error, text in answers:
        assert error
        assert "[not_configured]" in text
    assert "GITEA_URL" in answers[0][1] and "DEPLOY_DRIVER" in answers[2][1]
    assert snapshot() == before
