"""SPEC §5: all 64 (from, to) pairs against the one transition table."""

import itertools

import pytest
from django.contrib.auth.models import AnonymousUser

from aiworker import errors
from aiworker.actors import Actor
from tasks.models import Task, TaskEvent, TaskQuestion
from tasks.services import task_release_transition, task_transition
from tasks.states import (
    ACTIVE_STATES,
    RELEASE_TRANSITIONS,
    SERVICE_TRANSITIONS,
    TRANSITIONS,
    TaskState,
    plain_move_targets,
)
from tests.factories import make_agent, make_task, make_user

S = TaskState
ALL_PAIRS = list(itertools.product(S.values, S.values))
EXPECTED_ALLOWED = {
    ("backlog", "in_progress"), ("backlog", "cancelled"),
    ("in_progress", "needs_input"), ("in_progress", "ready_to_test"),
    ("in_progress", "backlog"), ("in_progress", "cancelled"),
    ("needs_input", "in_progress"), ("needs_input", "backlog"), ("needs_input", "cancelled"),
    ("ready_to_test", "approved"), ("ready_to_test", "in_progress"), ("ready_to_test", "cancelled"),
    ("ready_to_test", "backlog"),  # changes requested while its agent is busy
    ("approved", "ready_to_test"), ("approved", "staging"), ("approved", "cancelled"),
    ("staging", "production"), ("production", "staging"),  # promote, roll back
    ("cancelled", "backlog"),
}  # fmt: skip
# Reached only through the release services, and the one action each message names.
RELEASE_ONLY = {
    ("approved", "staging"): "Merge to staging",
    ("staging", "production"): "Promote",
    ("production", "staging"): "Roll back",
}
# Made only by one other service (an agent's question, Request changes).
SERVICE_ONLY = {
    ("in_progress", "needs_input"),
    ("ready_to_test", "in_progress"),
    ("ready_to_test", "backlog"),
}
PLAIN = EXPECTED_ALLOWED - set(RELEASE_ONLY) - SERVICE_ONLY


def test_table_is_the_spec_table():
    table = {(f, t) for f, targets in TRANSITIONS.items() for t in targets}
    assert table == EXPECTED_ALLOWED
    assert len(ALL_PAIRS) == 64
    assert {k: v for k, v in RELEASE_TRANSITIONS.items()} == RELEASE_ONLY
    assert set(SERVICE_TRANSITIONS) == SERVICE_ONLY
    assert {(f, t) for f in S.values for t in plain_move_targets(f)} == PLAIN


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
    """Superuser-strength person: every plain move of the table works, every other is refused
    with the targets a person may really pick, and nothing changes on a refusal."""
    person = make_user(perms=("tasks.approve_task", "deployments.promote_release"))
    agent, _ = make_agent()
    holder = agent if from_state in ACTIVE_STATES else None
    task = make_task(state=from_state, assigned_agent=holder)
    before = snapshot(task)
    # A person starting a task names its agent (SPEC §5: active only with a holder).
    named = agent.pk if from_state == "backlog" and to_state == "in_progress" else None
    if (from_state, to_state) in PLAIN:
        task_transition(
            task_id=task.pk, to_state=to_state, actor=Actor.of_user(person), agent_id=named
        )
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
        if to_state in ACTIVE_STATES:
            assert after["agent"] == agent.pk and after["lease"] is not None
    else:
        with pytest.raises(errors.TransitionNotAllowed) as info:
            task_transition(
                task_id=task.pk, to_state=to_state, actor=Actor.of_user(person), agent_id=named
            )
        assert sorted(plain_move_targets(from_state)) == info.value.allowed
        assert f"from '{from_state}' to '{to_state}'" in info.value.message
        if (from_state, to_state) in RELEASE_ONLY:
            assert f"use {RELEASE_ONLY[(from_state, to_state)]}" in info.value.message
        assert snapshot(task) == before


@pytest.mark.parametrize(("from_state", "to_state"), sorted(RELEASE_ONLY))
def test_release_moves_go_only_through_the_release_transition(db, from_state, to_state):
    superuser = make_user()
    superuser.is_superuser = True
    superuser.save()
    task = make_task(state=from_state)
    before = snapshot(task)
    with pytest.raises(errors.TransitionNotAllowed, match="use "):
        task_transition(task_id=task.pk, to_state=to_state, actor=Actor.of_user(superuser))
    assert snapshot(task) == before
    task_release_transition(
        task_id=task.pk, to_state=to_state, release_id=7, actor=Actor.system("release-7")
    )
    event = TaskEvent.objects.get(task=task)
    assert (task.__class__.objects.get(pk=task.pk).state, event.payload) == (
        to_state,
        {"release_id": 7},
    )


def test_release_transition_refuses_a_plain_move(db):
    task = make_task(state=S.READY_TO_TEST)
    before = snapshot(task)
    with pytest.raises(errors.TransitionNotAllowed):
        task_release_transition(
            task_id=task.pk, to_state=S.APPROVED, release_id=1, actor=Actor.system()
        )
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
