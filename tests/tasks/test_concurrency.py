"""Concurrent writers against the real database: locks, not luck, decide."""

import threading
from collections import Counter

import pytest
from django.db import connection

from aiworker import errors
from aiworker.actors import Actor
from tasks.models import Task, TaskEvent
from tasks.services import task_claim_next, task_transition
from tasks.states import TaskState
from tests.factories import make_agent, make_project, make_task, make_user

S = TaskState


def run_together(functions):
    """Run each function in its own thread (own DB connection), released at the same instant."""
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)

    def runner(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, fn)) for i, fn in enumerate(functions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_transitions_of_one_task_exactly_one_wins():
    people = [make_user(perms=("tasks.approve_task",)) for _ in range(2)]
    for _ in range(20):
        task = make_task(state=S.READY_TO_TEST)
        results = run_together(
            [
                lambda p=p, t=task: task_transition(
                    task_id=t.pk, to_state=S.APPROVED, actor=Actor.of_user(p)
                )
                for p in people
            ]
        )
        wins = [r for r in results if isinstance(r, Task)]
        refusals = [r for r in results if isinstance(r, errors.TransitionNotAllowed)]
        assert (len(wins), len(refusals)) == (1, 1), results
        assert TaskEvent.objects.filter(task=task, kind="status_changed").count() == 1


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_conflicting_transitions_one_wins_and_state_matches_the_single_event():
    for _ in range(20):
        task = make_task(state=S.IN_PROGRESS)
        results = run_together(
            [
                lambda t=task: task_transition(
                    task_id=t.pk, to_state=S.CANCELLED, actor=Actor.system()
                ),
                lambda t=task: task_transition(
                    task_id=t.pk, to_state=S.READY_TO_TEST, actor=Actor.system()
                ),
            ]
        )
        task.refresh_from_db()
        events = list(TaskEvent.objects.filter(task=task, kind="status_changed"))
        if task.state == S.CANCELLED and len(events) == 2:
            # ready_to_test then cancelled is legal too; both won in sequence, never at once.
            assert [e.to_state for e in events] == [S.READY_TO_TEST, S.CANCELLED]
        else:
            assert len([r for r in results if isinstance(r, Task)]) == 1
            assert [e.to_state for e in events] == [task.state]


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_take_each_task_exactly_once():
    project = make_project()
    tasks = [make_task(project=project) for _ in range(120)]
    agents = [make_agent()[0] for _ in range(8)]

    def claim_until_empty(agent):
        mine = []
        while True:
            task = task_claim_next(agent=agent)
            if task is None:
                return mine
            mine.append(task.pk)
            # Finish it so the agent can claim the next one.
            task_transition(task_id=task.pk, to_state=S.READY_TO_TEST, actor=Actor.of_agent(agent))

    results = run_together([lambda a=a: claim_until_empty(a) for a in agents])
    assert not [r for r in results if isinstance(r, Exception)], results
    claimed = Counter(pk for r in results for pk in r)
    assert set(claimed) == {t.pk for t in tasks}
    assert max(claimed.values()) == 1
    assert Task.objects.filter(state=S.READY_TO_TEST, attempt_count=1).count() == 120
