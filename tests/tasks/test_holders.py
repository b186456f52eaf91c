"""SPEC §5: a task is active only with a holder and a lease, every path into an active state
applies the same rules, and an agent holds at most AGENT_MAX_ACTIVE tasks. Each refusal
changes nothing."""

import pytest
from django.db import IntegrityError, transaction

from aiworker import errors
from aiworker.actors import Actor
from tasks.models import Task, TaskEvent, TaskQuestion
from tasks.services import (
    question_answer,
    question_ask,
    task_claim_next,
    task_log_progress,
    task_request_changes,
    task_transition,
)
from tasks.states import TaskState
from tests.factories import make_agent, make_project, make_task, make_user

S = TaskState


def snapshot(task: Task) -> tuple:
    task.refresh_from_db()
    return (task.state, task.assigned_agent_id, task.lease_expires_at, task.events.count())


def test_a_person_starting_a_task_names_a_free_agent(db):
    person = Actor.of_user(make_user())
    busy, _ = make_agent()
    free, _ = make_agent()
    make_task(state=S.IN_PROGRESS, assigned_agent=busy)
    task = make_task()
    before = snapshot(task)
    with pytest.raises(errors.Conflict, match="needs an agent"):
        task_transition(task_id=task.pk, to_state=S.IN_PROGRESS, actor=person)
    with pytest.raises(errors.Conflict, match="already holds"):
        task_transition(task_id=task.pk, to_state=S.IN_PROGRESS, actor=person, agent_id=busy.pk)
    with pytest.raises(errors.InvalidInput, match="does not exist"):
        task_transition(task_id=task.pk, to_state=S.IN_PROGRESS, actor=person, agent_id=10**9)
    assert snapshot(task) == before
    task_transition(task_id=task.pk, to_state=S.IN_PROGRESS, actor=person, agent_id=free.pk)
    task.refresh_from_db()
    free.refresh_from_db()
    assert (task.assigned_agent_id, task.attempt_count) == (free.pk, 1)
    assert task.lease_expires_at is not None
    assert (free.current_task_id, free.status) == (task.pk, "busy")


def test_revoked_offline_and_foreign_agents_cannot_be_named(db):
    person = Actor.of_user(make_user())
    task = make_task()
    revoked, _ = make_agent()
    revoked.revoked_at = task.created_at
    revoked.save()
    offline, _ = make_agent()
    offline.status = "offline"
    offline.save()
    foreign, _ = make_agent(project=make_project())
    before = snapshot(task)
    for agent, why in ((revoked, "revoked"), (offline, "offline"), (foreign, "another project")):
        with pytest.raises(errors.Conflict, match=why):
            task_transition(
                task_id=task.pk, to_state=S.IN_PROGRESS, actor=person, agent_id=agent.pk
            )
    assert snapshot(task) == before


def test_a_claim_never_gives_an_agent_a_second_active_task_in_another_project(db):
    agent, _ = make_agent()
    held = make_task(state=S.IN_PROGRESS, assigned_agent=agent)
    other = make_task(project=make_project())
    assert task_claim_next(agent=agent, project=other.project) == held
    assert snapshot(other)[:2] == (S.BACKLOG, None)


def test_agent_max_active_raises_the_limit_in_one_place(db, settings):
    settings.AGENT_MAX_ACTIVE = 2
    agent, _ = make_agent()
    project = make_project()
    first, second, third = (make_task(project=project) for _ in range(3))
    assert task_claim_next(agent=agent) == first
    assert task_claim_next(agent=agent) == second
    assert task_claim_next(agent=agent) == first  # full: its oldest task again
    assert snapshot(third)[:2] == (S.BACKLOG, None)


def test_requested_changes_wait_in_the_backlog_when_the_agent_is_busy(db):
    person = Actor.of_user(make_user())
    agent, _ = make_agent()
    done = make_task(state=S.READY_TO_TEST, assigned_agent=agent)
    assert task_claim_next(agent=make_agent()[0]) is None  # nothing else to claim
    make_task(state=S.IN_PROGRESS, assigned_agent=agent)
    task_request_changes(task_id=done.pk, actor=person, feedback="Use the brand colour")
    done.refresh_from_db()
    assert (done.state, done.assigned_agent_id) == (S.BACKLOG, None)
    # Whoever claims it next gets the feedback with it.
    other, _ = make_agent()
    assert task_claim_next(agent=other) == done
    assert done.feedback.get().body == "Use the brand colour"


def test_answering_a_question_with_a_full_column_keeps_the_slot(db):
    """The in-progress limit counts held tasks: a task that asked a question keeps its slot,
    so the answer brings it back without passing the limit."""
    project = make_project(wip_limits={"in_progress": 1})
    agent, _ = make_agent()
    task = make_task(project=project)
    assert task_claim_next(agent=agent) == task
    question = question_ask(task_id=task.pk, agent=agent, question="Blue?")
    # The slot is still taken: nobody else can start a task in this project.
    waiting = make_task(project=project)
    assert task_claim_next(agent=make_agent()[0]) is None
    question_answer(question_id=question.pk, actor=Actor.of_user(make_user()), answer="yes")
    assert snapshot(task)[:2] == (S.IN_PROGRESS, agent.pk)
    assert snapshot(waiting)[:2] == (S.BACKLOG, None)


def test_a_claim_whose_answer_fails_is_rolled_back(db):
    agent, _ = make_agent()
    task = make_task()
    before = snapshot(task)

    def broken_answer(claimed: Task) -> dict:
        raise ValueError("cannot shape the answer")

    with pytest.raises(ValueError):
        task_claim_next(agent=agent, answer=broken_answer)
    assert snapshot(task) == before
    agent.refresh_from_db()
    assert agent.current_task_id is None


@pytest.mark.parametrize(("field", "value"), [("priority", 9), ("state", "done")])
def test_the_database_refuses_out_of_range_values(db, field, value):
    task = make_task()
    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.filter(pk=task.pk).update(**{field: value})
    task.refresh_from_db()
    assert (task.priority, task.state) == (1, S.BACKLOG)


def test_progress_lines_are_capped_per_task(db, settings):
    settings.TASK_PROGRESS_KEEP = 5
    agent, _ = make_agent()
    task = make_task()
    task_claim_next(agent=agent)
    question_ask(task_id=task.pk, agent=agent, question="Which?")
    for i in range(12):
        task_log_progress(task_id=task.pk, actor=Actor.of_agent(agent), message=f"line {i}")
    progress = TaskEvent.objects.filter(task=task, kind="progress").order_by("id")
    assert [e.message for e in progress] == [f"line {i}" for i in range(7, 12)]
    # State changes are never dropped.
    assert task.events.filter(kind="status_changed").count() == 2
    assert TaskQuestion.objects.filter(task=task).count() == 1
