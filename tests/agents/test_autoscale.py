"""The autoscaler: a pure decision, then pods started and stopped through the stand-in API."""

import pytest

from agents import jobs, lifecycle
from agents.lifecycle import PodAgent, ScaleDecision, decide_scale
from agents.models import Agent, AgentStatus
from tasks.states import TaskState
from tests import factories
from tests.agents.conftest import NAMESPACE

B, I, S, E, O = (  # noqa: E741
    AgentStatus.BUSY,
    AgentStatus.IDLE,
    AgentStatus.STARTING,
    AgentStatus.ERROR,
    AgentStatus.OFFLINE,
)


@pytest.mark.parametrize(
    ("claimable", "max_agents", "statuses", "wip_room", "expected"),
    [
        (0, 3, [], None, ScaleDecision(0, ())),
        (5, 3, [], None, ScaleDecision(3, ())),  # capped by the project's maximum
        (2, 3, [B], None, ScaleDecision(2, ())),  # busy ones keep working
        (1, 3, [I], None, ScaleDecision(0, ())),  # an idle pod will take it
        (0, 3, [B, I, S], None, ScaleDecision(0, (2, 3))),  # spare pods go, idle first
        (0, 1, [B, B], None, ScaleDecision(0, ())),  # never stop a busy pod
        (4, 3, [E, O, B], None, ScaleDecision(2, (1, 2))),  # dead pods replaced
        (9, 5, [B], 2, ScaleDecision(2, ())),  # no more than the WIP limit admits
        (9, 5, [B, I], 0, ScaleDecision(0, (2,))),
    ],
)
def test_decide_scale(claimable, max_agents, statuses, wip_room, expected):
    agents = [PodAgent(id=i, status=s) for i, s in enumerate(statuses, start=1)]
    decision = decide_scale(
        claimable=claimable, max_agents=max_agents, agents=agents, wip_room=wip_room
    )
    assert decision == expected


def test_autoscaler_job_follows_backlog(kube, project):
    project.max_concurrent_agents = 2
    project.save()
    blocker = factories.make_task(project=project, state=TaskState.IN_PROGRESS)
    for _ in range(3):
        factories.make_task(project=project)
    blocked = factories.make_task(project=project)
    blocked.depends_on.add(blocker)  # not claimable: must not count

    assert jobs.autoscale_agent_pods() == {project.slug: {"create": 2, "delete": []}}
    assert len(kube.pods(NAMESPACE)) == 2
    assert Agent.objects.filter(project=project).exclude(pod_name="").count() == 2

    assert jobs.autoscale_agent_pods() == {}  # steady: starting pods count
    assert len(kube.pods(NAMESPACE)) == 2

    project.tasks.filter(state=TaskState.BACKLOG).update(state=TaskState.CANCELLED)
    Agent.objects.filter(project=project).update(status=AgentStatus.IDLE)
    result = jobs.autoscale_agent_pods()
    assert result[project.slug]["create"] == 0 and len(result[project.slug]["delete"]) == 2
    assert kube.pods(NAMESPACE) == {}


def test_autoscaler_is_off_without_pods(project, settings):
    settings.AGENT_POD_NAMESPACE = ""
    factories.make_task(project=project)
    assert jobs.autoscale_agent_pods() == {}
    assert Agent.objects.count() == 0


def test_failed_pod_is_replaced(kube, project):
    project.max_concurrent_agents = 1
    project.save()
    factories.make_task(project=project)
    first = lifecycle.agent_pod_create(project=project, actor=factories.system())
    kube.set_phase(NAMESPACE, first.pod_name, "Failed")

    jobs.autoscale_agent_pods()

    first.refresh_from_db()
    assert first.status == AgentStatus.OFFLINE and first.is_revoked
    assert list(kube.pods(NAMESPACE)) != [first.pod_name] and len(kube.pods(NAMESPACE)) == 1
