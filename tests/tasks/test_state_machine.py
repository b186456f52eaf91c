"""SPEC §5: all 64 (from, to) pairs against the one transition table."""

import itertools

import pytest
from django.contrib.auth.models import AnonymousUser

from aiworker import errors
from aiworker.actors import Actor
from tasks.models import Task, TaskEvent, TaskQuestion
from tasks.services import task_transition
from tasks.states import TRANSITIONS, TaskState
from tests.factories import make_task, make_user

S = TaskState
ALL_PAIRS = list(itertools.product(S.values, S.values))
EXPECTED_ALLOWED = {
    ("backlog", "in_progress"), ("backlog", "cancelled"),
    ("in_progress", "needs_input"), ("in_progress", "ready_to_test"),
    ("in_progress", "backlog"), ("in_progress", "cancelled"),
    ("needs_input", "in_progress"), ("needs_input", "backlog"), ("needs_input", "cancelled"),
    ("ready_to_test", "approved"), ("ready_to_test", "in_progress"), ("ready_to_test", "cancelled"),
    ("approved", "ready_to_test"), ("approved", "staging"), ("approved", "cancelled"),
    ("staging", "production"),
    ("cancelled", "backlog"),
}  # fmt: skip


def test_table_is_the_spec_table():
    table = {(f, t) for f, targets in TRANSITIONS.items() for t in targets}
    assert table == EXPECTED_ALLOWED
    assert len(ALL_PAIRS) == 64


def snapshot(task: Task) -> dict:
    task.refresh_from_db()
    return {
        "state": task.state,
        "agent": task.assigned_agent_id,
        "lease": task.lease_expires_at,
        "position": task.position,
        "events": TaskEvent.objects.filter(task=task).count(),
    }


@pytest.mark.parametrize(("from_state", "to_state"), ALL_PAIRS)
def test_every_pair(db, from_state, to_state):
    person = make_user(perms=("tasks.approve_task", "deployments.promote_release"))
    task = make_task(state=from_state)
    before = snapshot(task)
    if (from_state, to_state) in EXPECTED_ALLOWED:
        task_transition(task_id=task.pk, to_state=to_state, actor=Actor.of_user(person))
        after = snapshot(task)
        assert after["state"] == to_state
        assert after["events"] == before["events"] + 1
        event = TaskEvent.objects.get(task=task)
        assert (event.kind, event.from_state, event.to_state) == (
            "status_changed",
            from_state,
            to_state,
        )
        assert event.actor_kind == "user" and event.actor_user == person
    else:
        with pytest.raises(errors.TransitionNotAllowed) as info:
            task_transition(task_id=task.pk, to_state=to_state, actor=Actor.of_user(person))
        assert sorted(TRANSITIONS[from_state]) == info.value.allowed
        assert f"from '{from_state}' to '{to_state}'" in info.value.message
        assert snapshot(task) == before


def test_unknown_state_and_unknown_task_change_nothing(db):
    task = make_task()
    before = snapshot(task)
    with pytest.raises(errors.InvalidInput, match="Unknown state 'done'"):
        task_transition(task_id=task.pk, to_state="done", actor=Actor.system())
    with pytest.raises(errors.NotFound):
        task_transition(task_id=999_999, to_state=S.IN_PROGRESS, actor=Actor.system())
    with pytest.raises(errors.InvalidInput):
        task_transition(task_id="1", to_state=S.IN_PROGRESS, actor=Actor.system())  # type: ignore[arg-type]
    assert snapshot(task) == before


def test_approve_needs_the_permission(db):
    task = make_task(state=S.READY_TO_TEST)
    before = snapshot(task)
    with pytest.raises(errors.PermissionDenied, match=r"tasks\.approve_task"):
        task_transition(task_id=task.pk, to_state=S.APPROVED, actor=Actor.of_user(make_user()))
    assert snapshot(task) == before


def test_promote_needs_the_permission(db):
    task = make_task(state=S.STAGING)
    approver_only = make_user(perms=("tasks.approve_task",))
    before = snapshot(task)
    with pytest.raises(errors.PermissionDenied, match=r"deployments\.promote_release"):
        task_transition(task_id=task.pk, to_state=S.PRODUCTION, actor=Actor.of_user(approver_only))
    assert snapshot(task) == before


def test_anonymous_user_has_no_permission(db):
    task = make_task(state=S.READY_TO_TEST)
    with pytest.raises(errors.PermissionDenied):
        task_transition(
            task_id=task.pk, to_state=S.APPROVED, actor=Actor(kind="user", user=AnonymousUser())
        )


def test_needs_input_returns_only_when_questions_are_answered(db, agent_and_token):
    agent, _ = agent_and_token
    task = make_task(state=S.NEEDS_INPUT, assigned_agent=agent)
    TaskQuestion.objects.create(task=task, agent=agent, question="Which DB?")
    before = snapshot(task)
    with pytest.raises(errors.Conflict, match="open question"):
        task_transition(task_id=task.pk, to_state=S.IN_PROGRESS, actor=Actor.system())
    assert snapshot(task) == before


def test_moving_to_backlog_clears_the_agent_and_lease(db, agent_and_token):
    agent, _ = agent_and_token
    task = make_task(state=S.BACKLOG)
    from tasks.services import task_claim_next

    assert task_claim_next(agent=agent) == task
    task.refresh_from_db()
    assert task.assigned_agent == agent and task.lease_expires_at is not None
    agent.refresh_from_db()
    assert agent.current_task == task and agent.status == "busy"
    task_transition(task_id=task.pk, to_state=S.BACKLOG, actor=Actor.system(), note="requeue")
    task.refresh_from_db()
    agent.refresh_from_db()
    assert (task.assigned_agent, task.lease_expires_at) == (None, None)
    assert (agent.current_task, agent.status) == (None, "idle")
