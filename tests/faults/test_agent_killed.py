"""An agent killed mid-task (pod evicted, process -9): it stops heartbeating, and the
watchdog gives its task back to the backlog for another agent, with the attempt counted."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from agents import services as agent_services
from agents.models import AgentStatus
from tasks import services
from tasks.models import Task
from tasks.states import TaskState
from tests import factories

S = TaskState
pytestmark = pytest.mark.django_db


def test_killed_agents_task_is_released_after_the_offline_window(project):
    killed, _ = factories.make_agent(name="killed")
    other, _ = factories.make_agent(name="survivor")
    task = factories.make_task(project=project, title="half done")
    agent_services.agent_heartbeat(agent=killed)  # as its get_next_task call does over MCP
    assert services.task_claim_next(agent=killed, project=project).pk == task.pk
    agent_services.agent_heartbeat(agent=other)

    # Inside the window nothing happens: a slow agent is not a dead one.
    soon = timezone.now() + settings.AGENT_OFFLINE_DURATION / 2
    assert agent_services.agent_mark_stale_offline(now=soon) == []
    task.refresh_from_db()
    assert (task.state, task.assigned_agent_id) == (S.IN_PROGRESS, killed.pk)

    later = timezone.now() + settings.AGENT_OFFLINE_DURATION + timedelta(seconds=1)
    Task.objects.filter(pk=task.pk).update(lease_expires_at=later + timedelta(minutes=5))
    other.__class__.objects.filter(pk=other.pk).update(last_heartbeat_at=later)
    assert agent_services.agent_mark_stale_offline(now=later) == [killed.pk]
    task.refresh_from_db()
    killed.refresh_from_db()
    assert task.state == S.BACKLOG
    assert task.assigned_agent_id is None
    assert task.attempt_count == 1
    assert killed.status == AgentStatus.OFFLINE
    # The survivor gets it next; never two agents on it.
    assert services.task_claim_next(agent=other, project=project).pk == task.pk
    assert Task.objects.filter(assigned_agent__isnull=False).count() == 1


def test_expired_lease_alone_releases_the_task(project):
    """The lease is the second net: even if the agent's row still looks alive."""
    agent, _ = factories.make_agent()
    task = factories.make_task(project=project)
    services.task_claim_next(agent=agent, project=project)
    task.refresh_from_db()
    assert services.task_release_expired_leases(now=task.lease_expires_at) == 0
    after = task.lease_expires_at + timedelta(seconds=1)
    assert services.task_release_expired_leases(now=after) == 1
    task.refresh_from_db()
    assert (task.state, task.assigned_agent_id) == (S.BACKLOG, None)
