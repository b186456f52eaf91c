"""Every model has working admin pages; secrets never appear on them; saving a task cannot
change its state; agents get their token once."""

import re

import pytest

from agents.models import Agent
from agents.services import agent_authenticate
from deployments.models import Deployment, Release
from projects.models import Project, WebhookDelivery
from tasks.models import Task, TaskEvent, TaskFeedback, TaskQuestion
from tasks.states import TaskState
from tests.factories import make_agent, make_project, make_task


@pytest.fixture
def objects(db):
    project = make_project()
    agent, _ = make_agent(project=project)
    task = make_task(project=project, state=TaskState.NEEDS_INPUT, assigned_agent=agent)
    question = TaskQuestion.objects.create(task=task, agent=agent, question="Which DB?")
    TaskEvent.objects.create(task=task, kind="progress", actor_kind="system", message="hi")
    TaskFeedback.objects.create(task=task, body="Looks off")
    release = Release.objects.create(project=project, environment="staging")
    Deployment.objects.create(
        project=project, task=task, environment="preview", driver="gitops", namespace="p-1"
    )
    WebhookDelivery.objects.create(delivery_id="d-1", event="push", project=project)
    return {"project": project, "agent": agent, "task": task, "question": question, "r": release}


MODELS = [
    ("projects", "project", Project),
    ("projects", "webhookdelivery", WebhookDelivery),
    ("tasks", "task", Task),
    ("tasks", "taskquestion", TaskQuestion),
    ("tasks", "taskfeedback", TaskFeedback),
    ("tasks", "taskevent", TaskEvent),
    ("agents", "agent", Agent),
    ("deployments", "deployment", Deployment),
    ("deployments", "release", Release),
]


@pytest.mark.parametrize(("app", "model", "cls"), MODELS)
def test_changelist_search_and_change_pages(admin_client_, objects, app, model, cls):
    base = f"/admin/{app}/{model}/"
    assert admin_client_.get(base).status_code == 200
    assert admin_client_.get(base, {"q": "x"}).status_code == 200
    obj = cls.objects.first()
    page = admin_client_.get(f"{base}{obj.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert objects["project"].webhook_secret not in text
    assert objects["agent"].token_hash not in text


def test_secret_fields_are_not_in_the_forms(admin_client_, objects):
    page = admin_client_.get(f"/admin/projects/project/{objects['project'].pk}/change/")
    assert "webhook_secret" not in page.content.decode()
    page = admin_client_.get(f"/admin/agents/agent/{objects['agent'].pk}/change/")
    assert "token_hash" not in page.content.decode()
    assert admin_client_.get("/admin/projects/project/add/").status_code == 200
    assert (
        "webhook_secret" not in admin_client_.get("/admin/projects/project/add/").content.decode()
    )


def _task_form(task: Task, **changes) -> dict:
    data = {
        "title": task.title,
        "description": task.description,
        "priority": task.priority,
        "position": task.position,
        "parent": "",
        "depends_on": "",
        "branch_name": "",
        "pr_number": "",
        "pr_url": "",
        "head_sha": "",
        "preview_url": "",
        "spec_goals": "",
        "spec_context": "",
        "spec_architecture": "",
        "spec_edge_cases": "",
        "spec_acceptance_criteria": "",
        "spec_complexity": "",
        "questions-TOTAL_FORMS": "0",
        "questions-INITIAL_FORMS": "0",
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
    }
    data.update(changes)
    return data


def test_saving_a_task_cannot_change_its_state(admin_client_, objects):
    task = make_task(project=objects["project"], title="Old")
    url = f"/admin/tasks/task/{task.pk}/change/"
    response = admin_client_.post(url, _task_form(task, title="New", state="production"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    task.refresh_from_db()
    assert (task.title, task.state) == ("New", "backlog")
    assert TaskEvent.objects.filter(task=task, kind="edited").count() == 1


def test_add_task_in_the_admin_starts_in_backlog(admin_client_, objects):
    data = _task_form(Task(title="Made here", priority=1, position=0), state="approved")
    data["project"] = objects["project"].pk
    response = admin_client_.post("/admin/tasks/task/add/", data)
    assert response.status_code == 302
    task = Task.objects.get(title="Made here")
    assert task.state == "backlog"
    assert TaskEvent.objects.filter(task=task, kind="created").count() == 1


def test_dependency_cycle_in_the_admin_form_is_refused(admin_client_, objects):
    project = objects["project"]
    a, b = make_task(project=project), make_task(project=project)
    b.depends_on.add(a)
    response = admin_client_.post(
        f"/admin/tasks/task/{a.pk}/change/", _task_form(a, depends_on=str(b.pk), title="A2")
    )
    assert response.status_code == 200  # the form again, with the error
    assert "cycle" in str(response.context["adminform"].form.errors["depends_on"])
    a.refresh_from_db()
    assert a.title != "A2"
    assert a.depends_on.count() == 0


def test_answering_in_the_inline_goes_through_the_service(admin_client_, objects):
    task, question = objects["task"], objects["question"]
    data = _task_form(task)
    data.update(
        {
            "questions-TOTAL_FORMS": "1",
            "questions-INITIAL_FORMS": "1",
            "questions-0-id": question.pk,
            "questions-0-task": task.pk,
            "questions-0-answer": "MariaDB",
            "events-TOTAL_FORMS": "1",
            "events-INITIAL_FORMS": "1",
            "events-0-id": TaskEvent.objects.filter(task=task).first().pk,
            "events-0-task": task.pk,
        }
    )
    response = admin_client_.post(f"/admin/tasks/task/{task.pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    question.refresh_from_db()
    task.refresh_from_db()
    assert question.answer == "MariaDB"
    assert question.answered_by is not None
    assert task.state == "in_progress"  # the service resumed it: no question left open


def test_answering_on_the_question_page(admin_client_, objects):
    question = objects["question"]
    response = admin_client_.post(
        f"/admin/tasks/taskquestion/{question.pk}/change/", {"answer": "Postgres"}
    )
    assert response.status_code == 302
    question.refresh_from_db()
    assert question.answer == "Postgres"
    assert objects["task"].__class__.objects.get(pk=objects["task"].pk).state == "in_progress"


def _shown_tokens(response) -> dict[int, str]:
    """The tokens a page shows, by agent id; and proof that no cookie or message carries one."""
    page = response.content.decode()
    shown = dict(re.findall(r'data-agent="(\d+)">([^<]+)</code>', page))
    assert "no-store" in response["Cache-Control"]
    for token in shown.values():
        assert all(token not in morsel.value for morsel in response.cookies.values())
    assert not list(response.wsgi_request._messages)
    return {int(pk): token for pk, token in shown.items()}


def test_add_agent_shows_the_token_once(admin_client_, db):
    response = admin_client_.post(
        "/admin/agents/agent/add/",
        {"name": "worker-9", "kind": "codex", "capabilities": "[]", "project": ""},
    )
    assert response.status_code == 200  # the page itself, not a redirect with a message
    agent = Agent.objects.get(name="worker-9")
    token = _shown_tokens(response)[agent.pk]
    assert agent_authenticate(token) == agent
    page = admin_client_.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert token not in page
    assert token not in admin_client_.get("/admin/agents/agent/").content.decode()


def test_revoke_and_rotate_actions(admin_client_, db):
    agent, old_token = make_agent()
    response = admin_client_.post(
        "/admin/agents/agent/",
        {"action": "rotate_tokens", "_selected_action": [agent.pk]},
    )
    assert response.status_code == 200
    new_token = _shown_tokens(response)[agent.pk]
    assert new_token not in admin_client_.get("/admin/agents/agent/").content.decode()
    assert agent_authenticate(new_token) == agent
    with pytest.raises(Exception, match="Unknown agent token"):
        agent_authenticate(old_token)

    admin_client_.post(
        "/admin/agents/agent/", {"action": "revoke_tokens", "_selected_action": [agent.pk]}
    )
    agent.refresh_from_db()
    assert agent.revoked_at is not None
    with pytest.raises(Exception, match="revoked"):
        agent_authenticate(new_token)
