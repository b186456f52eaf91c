"""Dependencies, WIP limits, claim order and the dependency DAG (SPEC §5)."""

import pytest

from aiworker import errors
from aiworker.actors import Actor
from tasks.models import Task, TaskEvent
from tasks.rules import claimable, find_cycle, unmet_dependencies
from tasks.services import task_claim_next, task_create, task_set_dependencies, task_transition
from tasks.states import TaskState
from tests.factories import make_agent, make_project, make_task, system

S = TaskState


def test_find_cycle():
    assert find_cycle([(1, 2), (2, 3)]) is None
    assert find_cycle([(1, 2), (2, 3), (3, 1)]) == [1, 2, 3, 1]
    assert find_cycle([(1, 1)]) == [1, 1]
    assert find_cycle([(i, i + 1) for i in range(5000)]) is None  # no recursion limit


def test_cycle_is_refused_and_nothing_changes(db, project):
    a, b, c = (make_task(project=project) for _ in range(3))
    task_set_dependencies(task_id=b.pk, depends_on_ids=[a.pk], actor=system())
    task_set_dependencies(task_id=c.pk, depends_on_ids=[b.pk], actor=system())
    events = TaskEvent.objects.count()
    with pytest.raises(errors.InvalidInput, match="cycle") as info:
        task_set_dependencies(task_id=a.pk, depends_on_ids=[c.pk], actor=system())
    assert f"#{a.pk}" in info.value.message
    assert list(a.depends_on.all()) == []
    assert TaskEvent.objects.count() == events


def test_unknown_or_foreign_dependency_is_refused(db, project):
    task = make_task(project=project)
    other = make_task()  # another project
    for ids in ([999_999], [other.pk], ["x"]):
        with pytest.raises(errors.InvalidInput):
            task_set_dependencies(task_id=task.pk, depends_on_ids=ids, actor=system())
    assert task.depends_on.count() == 0


def test_unmet_dependencies_block_claim_and_start(db, project):
    agent, _ = make_agent()
    dep = make_task(project=project, state=S.APPROVED)
    task = make_task(project=project)
    task.depends_on.add(dep)
    assert unmet_dependencies(task) == [dep]
    assert task not in claimable()
    assert task_claim_next(agent=agent) is None
    with pytest.raises(errors.Conflict, match="depends on"):
        task_transition(task_id=task.pk, to_state=S.IN_PROGRESS, actor=system())
    task.refresh_from_db()
    assert task.state == S.BACKLOG
    Task.objects.filter(pk=dep.pk).update(state=S.STAGING)
    assert list(claimable()) == [task]
    assert task_claim_next(agent=agent) == task


def test_wip_limit_holds_for_claims_and_people(db):
    project = make_project(wip_limits={"in_progress": 2})
    tasks = [make_task(project=project) for _ in range(4)]
    agents = [make_agent()[0] for _ in range(3)]
    assert task_claim_next(agent=agents[0]) == tasks[0]
    assert task_claim_next(agent=agents[1]) == tasks[1]
    assert task_claim_next(agent=agents[2]) is None
    with pytest.raises(errors.Conflict, match="WIP limit of 2"):
        task_transition(task_id=tasks[3].pk, to_state=S.IN_PROGRESS, actor=system())
    assert Task.objects.filter(project=project, state=S.IN_PROGRESS).count() == 2


def test_wip_limit_of_one_project_does_not_block_another(db):
    full = make_project(wip_limits={"in_progress": 0})
    free = make_project()
    make_task(project=full, priority=3)
    open_task = make_task(project=free, priority=0)
    agent, _ = make_agent()
    assert task_claim_next(agent=agent) == open_task


def test_claim_order_priority_then_position_then_age(db, project):
    low = make_task(project=project, priority=0, position=0)
    high_late = make_task(project=project, priority=2, position=5)
    high_early = make_task(project=project, priority=2, position=1)
    high_early_younger = make_task(project=project, priority=2, position=1)
    order = []
    for _ in range(4):
        agent, _ = make_agent()
        order.append(task_claim_next(agent=agent))
    assert order == [high_early, high_early_younger, high_late, low]


def test_claim_sets_lease_attempt_and_agent(db, project):
    agent, _ = make_agent()
    task = make_task(project=project)
    claimed = task_claim_next(agent=agent)
    assert claimed == task
    task.refresh_from_db()
    agent.refresh_from_db()
    assert (task.state, task.assigned_agent, task.attempt_count) == (S.IN_PROGRESS, agent, 1)
    assert task.lease_expires_at is not None
    assert (agent.status, agent.current_task) == ("busy", task)
    event = TaskEvent.objects.get(task=task)
    assert (event.actor_kind, event.actor_agent, event.to_state) == ("agent", agent, S.IN_PROGRESS)
    # Asking again gives the same task back (a restarted agent resumes), with no new event.
    assert task_claim_next(agent=agent) == task
    assert TaskEvent.objects.filter(task=task).count() == 1


def test_project_restriction(db):
    home, other = make_project(), make_project()
    agent, _ = make_agent(project=home)
    make_task(project=other)
    assert task_claim_next(agent=agent) is None
    with pytest.raises(errors.PermissionDenied):
        task_claim_next(agent=agent, project=other)


def test_agent_may_only_touch_its_own_task(db, project):
    owner, _ = make_agent()
    intruder, _ = make_agent()
    task = make_task(project=project)
    task_claim_next(agent=owner)
    with pytest.raises(errors.PermissionDenied, match="not assigned"):
        task_transition(task_id=task.pk, to_state=S.READY_TO_TEST, actor=Actor.of_agent(intruder))
    with pytest.raises(errors.TransitionNotAllowed):
        task_transition(task_id=task.pk, to_state=S.CANCELLED, actor=Actor.of_agent(owner))
    task.refresh_from_db()
    assert task.state == S.IN_PROGRESS


def test_create_validates_and_writes_nothing_on_bad_input(db, project):
    for kwargs in (
        {"title": ""},
        {"title": "x" * 201},
        {"title": 5},
        {"title": "ok", "priority": 9},
        {"title": "ok", "description": "d" * 100_001},
        {"title": "ok", "parent_id": 999_999},
        {"title": "ok", "depends_on_ids": [999_999]},
        {"title": "ok", "spec": {"nonsense": "x"}},
    ):
        with pytest.raises(errors.InvalidInput):
            task_create(project=project, actor=system(), **kwargs)
    assert Task.objects.count() == 0
    assert TaskEvent.objects.count() == 0
