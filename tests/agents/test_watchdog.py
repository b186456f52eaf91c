"""The heartbeat watchdog: silent agents go offline and their tasks return to the backlog."""

from datetime import timedelta

from django.utils import timezone

from agents import jobs
from agents.models import AgentStatus
from agents.services import agent_touch
from tasks.models import TaskEvent
from tasks.services import task_claim_next
from tasks.states import TaskState
from tests import factories


def test_silent_agent_goes_offline_and_its_task_is_released(project, settings):
    silent, _ = factories.make_agent()
    alive, _ = factories.make_agent()
    task = factories.make_task(project=project)
    other = factories.make_task(project=project)
    assert task_claim_next(agent=silent).pk == task.pk
    assert task_claim_next(agent=alive).pk == other.pk
    agent_touch(agent=alive)
    long_ago = timezone.now() - settings.AGENT_OFFLINE_DURATION - timedelta(seconds=5)
    type(silent).objects.filter(pk=silent.pk).update(last_heartbeat_at=long_ago)

    assert jobs.mark_stale_agents_offline() == 1

    silent.refresh_from_db()
    alive.refresh_from_db()
    task.refresh_from_db()
    other.refresh_from_db()
    assert silent.status == AgentStatus.OFFLINE and silent.current_task is None
    assert "No heartbeat since" in silent.status_message
    assert task.state == TaskState.BACKLOG and task.assigned_agent is None
    event = TaskEvent.objects.filter(task=task, kind="status_changed").last()
    assert (event.from_state, event.to_state, event.actor_kind) == (
        TaskState.IN_PROGRESS,
        TaskState.BACKLOG,
        "system",
    )
    assert "went offline" in event.message
    # The live agent keeps its task.
    assert alive.status == AgentStatus.BUSY
    assert other.state == TaskState.IN_PROGRESS and other.assigned_agent == alive

    # Another agent claims it: the attempt count goes up.
    third, _ = factories.make_agent()
    assert task_claim_next(agent=third).pk == task.pk
    task.refresh_from_db()
    assert task.attempt_count == 2 and task.assigned_agent == third


def test_recent_heartbeat_keeps_agent(project):
    agent, _ = factories.make_agent()
    task = factories.make_task(project=project)
    task_claim_next(agent=agent)
    agent_touch(agent=agent)
    assert jobs.mark_stale_agents_offline() == 0
    task.refresh_from_db()
    assert task.state == TaskState.IN_PROGRESS and task.assigned_agent == agent


def test_an_agent_that_never_called_in_goes_offline_unless_still_starting(db, project):
    from datetime import timedelta

    from django.utils import timezone

    from agents.models import Agent, AgentStatus
    from agents.services import agent_mark_stale_offline
    from tasks.models import Task
    from tests.factories import make_agent, make_task

    silent, _ = make_agent()
    starting, _ = make_agent()
    Agent.objects.filter(pk=silent.pk).update(status=AgentStatus.BUSY)
    task = make_task(project=project, state="in_progress", assigned_agent=silent)
    later = timezone.now() + timedelta(hours=1)
    assert agent_mark_stale_offline(now=later) == [silent.pk]
    silent.refresh_from_db()
    starting.refresh_from_db()
    assert (silent.status, silent.status_message) == (AgentStatus.OFFLINE, "Never called in")
    assert starting.status == AgentStatus.STARTING
    assert Task.objects.get(pk=task.pk).state == "backlog"
