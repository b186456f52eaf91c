"""Property test: any sequence of claims, transitions, questions and lease expiries keeps the
invariants — at most one agent per task, agents and tasks agree, events agree with states."""

import itertools
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.models import Agent
from aiworker import errors
from aiworker.actors import Actor
from tasks import services
from tasks.models import Task, TaskEvent
from tasks.states import ACTIVE_STATES, TaskState
from tests.factories import make_agent, make_project, make_task, make_user

N_TASKS, N_AGENTS = 4, 3
operation = st.one_of(
    st.tuples(st.just("claim"), st.integers(0, N_AGENTS - 1)),
    st.tuples(st.just("person"), st.integers(0, N_TASKS - 1), st.sampled_from(TaskState.values)),
    st.tuples(st.just("agent"), st.integers(0, N_AGENTS - 1), st.integers(0, N_TASKS - 1),
              st.sampled_from(TaskState.values)),
    st.tuples(st.just("ask"), st.integers(0, N_AGENTS - 1), st.integers(0, N_TASKS - 1)),
    st.tuples(st.just("answer"),),
    st.tuples(st.just("expire"),),
)  # fmt: skip


class Rollback(Exception):
    pass


def check_invariants(tasks: list[Task], agents: list[Agent]) -> None:
    for task in Task.objects.filter(pk__in=[t.pk for t in tasks]):
        if task.state in ACTIVE_STATES:
            # A person may start a task themselves (no agent, no lease); an agent's has a lease.
            assert (task.assigned_agent_id is None) == (task.lease_expires_at is None)
        if task.state in (TaskState.BACKLOG, TaskState.CANCELLED):
            assert task.assigned_agent_id is None and task.lease_expires_at is None
        moves = list(TaskEvent.objects.filter(task=task, kind="status_changed").order_by("id"))
        expected = moves[-1].to_state if moves else TaskState.BACKLOG
        assert task.state == expected
        for before, after in itertools.pairwise(moves):
            assert after.from_state == before.to_state  # an unbroken chain of transitions
    current = [a.current_task_id for a in Agent.objects.filter(pk__in=[a.pk for a in agents])]
    held = [c for c in current if c is not None]
    assert len(held) == len(set(held)), "two agents hold one task"
    for agent in Agent.objects.filter(pk__in=[a.pk for a in agents], current_task__isnull=False):
        task = Task.objects.get(pk=agent.current_task_id)
        assert task.assigned_agent_id == agent.pk and task.state in ACTIVE_STATES


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(operation, min_size=1, max_size=25))
def test_any_sequence_keeps_the_invariants(db, ops):
    try:
        with transaction.atomic():
            project = make_project()
            tasks = [make_task(project=project) for _ in range(N_TASKS)]
            agents = [make_agent()[0] for _ in range(N_AGENTS)]
            person = Actor.of_user(
                make_user(perms=("tasks.approve_task", "deployments.promote_release"))
            )
            for op in ops:
                try:
                    if op[0] == "claim":
                        services.task_claim_next(agent=agents[op[1]])
                    elif op[0] == "person":
                        services.task_transition(
                            task_id=tasks[op[1]].pk, to_state=op[2], actor=person
                        )
                    elif op[0] == "agent":
                        services.task_transition(
                            task_id=tasks[op[2]].pk,
                            to_state=op[3],
                            actor=Actor.of_agent(agents[op[1]]),
                        )
                    elif op[0] == "ask":
                        services.question_ask(
                            task_id=tasks[op[2]].pk, agent=agents[op[1]], question="?"
                        )
                    elif op[0] == "answer":
                        from tasks.models import TaskQuestion

                        q = TaskQuestion.objects.filter(
                            answered_at__isnull=True, task__in=tasks
                        ).first()
                        if q:
                            services.question_answer(question_id=q.pk, actor=person, answer="yes")
                    elif op[0] == "expire":
                        services.task_release_expired_leases(now=timezone.now() + timedelta(days=1))
                except errors.DomainError:
                    pass  # refusals are expected; they must change nothing
                check_invariants(tasks, agents)
            raise Rollback
    except Rollback:
        pass
