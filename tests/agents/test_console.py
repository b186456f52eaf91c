"""The agent console page and the subtask DAG include."""

from django.template import Context, Template

from agents import lifecycle
from aiworker.actors import Actor
from tasks.services import task_claim_next, task_log_progress
from tasks.states import TaskState
from tests import factories


def test_console_needs_login(client, db):
    response = client.get("/agents/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_console_shows_each_agents_progress(client, user, project):
    agent, token = factories.make_agent(project=project)
    idle, _ = factories.make_agent()
    task = factories.make_task(project=project, title="Add login")
    task_claim_next(agent=agent)
    for i in range(25):
        task_log_progress(task_id=task.pk, actor=Actor.of_agent(agent), message=f"step {i}")
    client.force_login(user)

    page = client.get("/agents/").content.decode()

    assert f'id="agent-{agent.pk}"' in page and f'id="agent-{idle.pk}"' in page
    assert f"#{task.pk} Add login" in page
    assert "step 24" in page and "step 5" in page and "step 4<" not in page  # last 20
    assert "No progress yet." in page  # the idle one
    assert token not in page and agent.token_hash not in page
    assert "data-log-url" not in page  # pods are off


def test_console_filters_by_project(client, user, project):
    mine, _ = factories.make_agent(project=project)
    other, _ = factories.make_agent(project=factories.make_project())
    client.force_login(user)
    page = client.get(f"/agents/?project={project.slug}").content.decode()
    assert f'id="agent-{mine.pk}"' in page and f'id="agent-{other.pk}"' not in page


def test_pod_log_endpoint(client, user, project, kube):
    agent = lifecycle.agent_pod_create(project=project, actor=factories.system())
    kube.logs[agent.pod_name] = "cloning\nrunning claude"
    plain, _ = factories.make_agent()
    client.force_login(user)

    assert 'class="pod-log"' in client.get("/agents/").content.decode()
    assert client.get(f"/agents/{agent.pk}/log/").json() == {
        "pod": agent.pod_name,
        "log": "cloning\nrunning claude",
    }
    assert client.get(f"/agents/{plain.pk}/log/").status_code == 404
    assert client.get("/agents/999999/log/").status_code == 404


def test_pod_log_when_pods_are_off(client, user, project, settings):
    settings.AGENT_POD_NAMESPACE = ""
    agent, _ = factories.make_agent(project=project)
    type(agent).objects.filter(pk=agent.pk).update(pod_name="aiworker-agent-1")
    client.force_login(user)
    response = client.get(f"/agents/{agent.pk}/log/")
    assert response.status_code == 503 and "AGENT_POD_NAMESPACE" in response.json()["error"]


def test_dag_include_draws_subtasks_in_dependency_layers(project):
    parent = factories.make_task(project=project, title="Checkout")
    a = factories.make_task(project=project, parent=parent, title="Model")
    b = factories.make_task(project=project, parent=parent, title="API")
    c = factories.make_task(project=project, parent=parent, title="UI", state=TaskState.STAGING)
    b.depends_on.add(a)
    c.depends_on.add(a, b)

    html = Template("{% load agents_dag %}{% task_dag task %}").render(Context({"task": parent}))

    assert 'data-testid="task-dag"' in html
    for t in (a, b, c):
        assert f'data-task="{t.pk}"' in html
    assert html.count("<line ") == 3
    assert f"#{c.pk} UI (Staging) after #{a.pk}, #{b.pk}" in html
    # Layers: a left of b left of c.
    from agents.selectors import subtask_dag

    layers = {n.task.pk: n.layer for n in subtask_dag(parent)["nodes"]}
    assert layers == {a.pk: 0, b.pk: 1, c.pk: 2}


def test_dag_include_is_empty_without_subtasks(project):
    task = factories.make_task(project=project)
    html = Template("{% load agents_dag %}{% task_dag task %}").render(Context({"task": task}))
    assert html.strip() == ""
