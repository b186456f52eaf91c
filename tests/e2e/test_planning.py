"""Planning over the real MCP client: create_subtasks validates the whole DAG before writing,
and a parent waits for its subtasks (docs/agents.md, "When the parent moves on")."""

import pytest

from tasks.models import Task
from tasks.rules import claimable
from tasks.services import task_claim_next, task_release_transition, task_transition
from tasks.states import TaskState
from tests import factories
from tests.mcpbridge.conftest import call, http_client, run, snapshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("subtasks", "message"),
    [
        (
            [
                {"title": "a", "depends_on": ["new:1"]},
                {"title": "b", "depends_on": ["new:0"]},
            ],
            "cycle",
        ),
        ([{"title": "a", "depends_on": [987654]}], "#987654"),
        ([{"title": "a", "depends_on": ["new:5"]}], "refers to no subtask"),
    ],
)
def test_create_subtasks_refuses_cycles_and_unknown_ids_and_writes_nothing(
    mcp_url, subtasks, message
):
    project = factories.make_project()
    parent = factories.make_task(project=project, title="Checkout")
    _, token = factories.make_agent(can_plan=True)
    before = _without_agents(snapshot())

    async def go():
        async with http_client(mcp_url, token) as client:
            return await call(client, "create_subtasks", task_id=parent.pk, subtasks=subtasks)

    is_error, text = run(go())
    assert is_error and message in text
    assert _without_agents(snapshot()) == before  # tasks, events, dependencies unchanged


def test_parent_waits_for_its_subtasks(mcp_url):
    project = factories.make_project()
    parent = factories.make_task(project=project, title="Checkout")
    _, token = factories.make_agent(can_plan=True)

    async def go():
        async with http_client(mcp_url, token) as client:
            return await call(
                client,
                "create_subtasks",
                task_id=parent.pk,
                subtasks=[
                    {"title": "Model", "description": "cart model"},
                    {"title": "API", "description": "cart API", "depends_on": ["new:0"]},
                ],
            )

    is_error, answer = run(go())
    assert not is_error, answer
    model, api = (Task.objects.get(pk=s["id"]) for s in answer["subtasks"])
    assert list(claimable(Task.objects.filter(project=project))) == [model]

    worker, _ = factories.make_agent()
    assert task_claim_next(agent=worker) == model
    for state in (TaskState.READY_TO_TEST, TaskState.APPROVED):
        task_transition(task_id=model.pk, to_state=state, actor=factories.system())
    task_release_transition(
        task_id=model.pk, to_state=TaskState.STAGING, release_id=1, actor=factories.system()
    )
    assert list(claimable(Task.objects.filter(project=project))) == [api]

    task_transition(task_id=api.pk, to_state=TaskState.CANCELLED, actor=factories.system())
    assert list(claimable(Task.objects.filter(project=project))) == [parent]


def _without_agents(state: tuple) -> tuple:
    # Any call renews the caller's heartbeat (starting -> idle); that is not a write of the tool.
    return state[:4] + state[5:]
