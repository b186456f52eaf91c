"""The heartbeat's cost and behaviour (issue 18): one write of each kind, no transaction, a
status saved and broadcast only when it changes, the automatic touch skipped by the tool."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents import services
from agents.models import Agent, AgentStatus
from agents.services import agent_authenticate, agent_heartbeat, agent_touch
from mcpbridge.auth import _authenticated_call
from mcpbridge.tools import _context, _heartbeat
from tasks import claim_queries, rules
from tasks.models import Task
from tasks.services import task_claim_next
from tests import factories

pytestmark = pytest.mark.django_db


def _working_agent() -> tuple[Agent, str, Task]:
    agent, token = factories.make_agent()
    task = factories.make_task()
    assert task_claim_next(agent=agent) == task
    Agent.objects.filter(pk=agent.pk).update(
        status=AgentStatus.BUSY, status_message="running the agent"
    )
    return agent_authenticate(token), token, task


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries]


@pytest.fixture
def broadcasts(monkeypatch):
    sent: list[dict] = []
    monkeypatch.setattr(services.live, "broadcast_on_commit", lambda **kw: sent.append(kw))
    return sent


def test_a_runner_beat_is_four_statements_and_renews_the_lease_once(broadcasts):
    agent, token, task = _working_agent()
    broadcasts.clear()  # the claim's
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        answer = _authenticated_call(
            token,
            _heartbeat,
            {"status": "busy", "message": "running the agent"},
            agent,  # as the HTTP token check loaded it
            None,  # the runner's calls are not recorded
            False,  # the tool's own call: no automatic touch
        )
    sql = _statements(queries)
    assert len(sql) == 4, sql  # held tasks, agent UPDATE, lease UPDATE, cli_calls
    assert not any(s in ("BEGIN", "COMMIT") or "SAVEPOINT" in s for s in sql)
    assert sum(s.startswith("UPDATE") and "tasks_task" in s for s in sql) == 1
    assert sum(s.startswith("UPDATE") and "agents_agent" in s for s in sql) == 1
    task.refresh_from_db()
    lease = task.lease_expires_at
    assert lease is not None and lease > timezone.now() + timedelta(minutes=9)
    assert answer["current_task_id"] == task.pk
    assert answer["lease_expires_at"] == lease.isoformat()
    assert answer["status"] == "busy" and answer["cli_calls"] == 0
    assert broadcasts == []  # nothing changed on any board


def test_the_heartbeat_tool_touches_once_other_tools_touch_too():
    agent, token, _ = _working_agent()
    stale = timezone.now() - timedelta(minutes=1)
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=stale)
    agent = agent_authenticate(token)
    with CaptureQueriesContext(connection) as queries:
        beat = {"status": None, "message": None}
        _authenticated_call(token, _heartbeat, beat, agent, touch=False)
    assert sum("lease_expires_at" in s for s in _statements(queries)) == 1
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=stale)
    agent = agent_authenticate(token)
    with CaptureQueriesContext(connection) as queries:
        _authenticated_call(token, _context, {}, agent)  # any other tool: the automatic touch
    assert sum("lease_expires_at = " in s for s in _statements(queries)) == 1
    agent.refresh_from_db()
    assert agent.last_heartbeat_at is not None and agent.last_heartbeat_at > stale


def test_a_new_status_or_message_is_saved_and_broadcast(broadcasts):
    agent, _, task = _working_agent()
    broadcasts.clear()  # the claim's
    agent_heartbeat(agent=agent, status="busy", message="running the agent")
    assert broadcasts == []
    agent_heartbeat(agent=agent, status="busy", message="compiling")
    agent_heartbeat(agent=agent, status="error", message=None)
    agent.refresh_from_db()
    assert (agent.status, agent.status_message) == ("error", "compiling")
    assert [b["data"]["status"] for b in broadcasts] == ["busy", "error"]
    assert {b["project_id"] for b in broadcasts} == {task.project_id}


def test_an_offline_agent_that_beats_is_back_once(broadcasts):
    agent, token, _ = _working_agent()
    Agent.objects.filter(pk=agent.pk).update(status=AgentStatus.OFFLINE)
    broadcasts.clear()  # the claim's
    beat = agent_heartbeat(agent=agent_authenticate(token))
    assert beat.agent.status == AgentStatus.BUSY  # it holds a task
    assert Agent.objects.get(pk=agent.pk).status == AgentStatus.BUSY
    assert [b["data"]["status"] for b in broadcasts] == ["busy"]


def test_the_touch_says_whether_it_wrote():
    agent, _ = factories.make_agent()
    assert agent_touch(agent=agent) is True
    assert agent_touch(agent=agent) is False  # within TOUCH_INTERVAL
    assert Agent.objects.get(pk=agent.pk).last_heartbeat_at is not None


def test_an_idle_agent_beat_writes_no_lease():
    agent, _ = factories.make_agent()
    with CaptureQueriesContext(connection) as queries:
        beat = agent_heartbeat(agent=agent)
    assert beat.task_id is None and beat.lease_expires_at is None
    assert not any(s.startswith("UPDATE") and "tasks_task" in s for s in _statements(queries))
    assert Agent.objects.get(pk=agent.pk).status == AgentStatus.IDLE


def test_the_held_tasks_sql_is_the_rule():
    agent, _, task = _working_agent()
    other = factories.make_task(assigned_agent=agent, state="needs_input")
    factories.make_task(assigned_agent=agent, state="production")
    assert claim_queries.held_task_ids(agent.pk) == rules.held_task_ids(agent.pk)
    assert claim_queries.held_task_ids(agent.pk) == sorted([task.pk, other.pk])
    until = timezone.now() + timedelta(hours=1)
    moved = factories.make_task(assigned_agent=agent, state="production")
    assert claim_queries.renew_leases(
        agent_id=agent.pk, task_ids=[task.pk, other.pk, moved.pk], expires_at=until
    ) == 2  # fmt: skip
    assert set(Task.objects.filter(lease_expires_at=until).values_list("pk", flat=True)) == {
        task.pk,
        other.pk,
    }


def _fields(obj: object) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}  # type: ignore[attr-defined]


@pytest.mark.parametrize("restricted", [True, False])
def test_the_token_lookup_sql_loads_what_the_orm_loads(restricted):
    project = factories.make_project(preview_env={"A": "1"}, wip_limits={"in_progress": 2})
    agent, token = factories.make_agent(
        project=project if restricted else None, can_plan=True, capabilities=["python", "go"]
    )
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=timezone.now())
    orm = Agent.objects.select_related("project").get(pk=agent.pk)
    with CaptureQueriesContext(connection) as queries:
        loaded = agent_authenticate(token)
        project_of_loaded = loaded.project  # loaded with it: no second query
    assert len(queries.captured_queries) == 1
    assert _fields(loaded) == _fields(orm)
    assert loaded._state.adding is False and loaded._state.db == "default"
    if restricted:
        assert project_of_loaded is not None and orm.project is not None
        assert _fields(project_of_loaded) == _fields(orm.project)
    else:
        assert project_of_loaded is None


def test_an_unknown_or_revoked_token_is_refused():
    from agents.services import agent_revoke
    from aiworker import errors

    agent, token = factories.make_agent()
    with pytest.raises(errors.PermissionDenied, match="Unknown"):
        agent_authenticate(token + "x")
    agent_revoke(agent_id=agent.pk)
    with pytest.raises(errors.PermissionDenied, match="revoked"):
        agent_authenticate(token)
