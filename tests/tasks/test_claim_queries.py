"""The claim's hand-written SQL (tasks/claim_queries.py) agrees with `rules.claimable`, the
readable definition, on random task graphs: states, priorities, positions, dependencies and
subtasks, with and without the exclusions a claim passes."""

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks import claim_queries, rules
from tasks.models import Task
from tasks.states import TaskState
from tests.factories import make_project

N_TASKS = 8
task_shape = st.tuples(
    st.sampled_from(TaskState.values),  # state
    st.integers(0, 3),  # priority
    st.integers(0, 3),  # position: ties on purpose, the id breaks them
    st.sets(st.integers(0, N_TASKS - 1), max_size=3),  # depends on (indexes)
    st.one_of(st.none(), st.integers(0, N_TASKS - 1)),  # parent (index)
)


class Rollback(Exception):
    pass


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    shapes=st.lists(task_shape, min_size=N_TASKS, max_size=N_TASKS),
    excluded=st.sets(st.integers(0, N_TASKS - 1), max_size=3),
    limit=st.integers(1, N_TASKS + 1),
)
def test_claim_sql_matches_the_rules(db, shapes, excluded, limit):
    try:
        with transaction.atomic():
            project, other = make_project(), make_project()
            tasks = [
                Task.objects.create(
                    project=project, title=f"t{i}", state=state, priority=prio, position=pos
                )
                for i, (state, prio, pos, _, _) in enumerate(shapes)
            ]
            for task, (_, _, _, deps, parent) in zip(tasks, shapes, strict=True):
                task.depends_on.set([tasks[d] for d in deps if tasks[d] != task])
                if parent is not None and tasks[parent] != task:
                    Task.objects.filter(pk=task.pk).update(parent=tasks[parent])
            Task.objects.create(project=other, title="elsewhere")  # outside the scope
            excluded_ids = [tasks[i].pk for i in sorted(excluded)]

            expected = list(
                rules.claimable(Task.objects.filter(project=project))
                .exclude(pk__in=excluded_ids)
                .values_list("pk", flat=True)[:limit]
            )
            assert (
                claim_queries.claimable_ids(
                    project_id=project.pk,
                    exclude_ids=excluded_ids,
                    exclude_project_ids=[],
                    limit=limit,
                )
                == expected
            )
            everywhere = list(
                rules.claimable().exclude(project=other).values_list("pk", flat=True)[:limit]
            )
            assert (
                claim_queries.claimable_ids(
                    project_id=None, exclude_ids=[], exclude_project_ids=[other.pk], limit=limit
                )
                == everywhere
            )
            ready = set(rules.claimable(Task.objects.filter(project=project)).values_list("pk"))
            fields = Task._meta.concrete_fields
            for task in tasks:
                is_backlog = task.state == TaskState.BACKLOG
                assert (is_backlog and claim_queries.is_ready(task.pk)) == ((task.pk,) in ready)
                locked = claim_queries.lock_backlog_task(task.pk)
                assert (locked is not None) == is_backlog
                if locked is not None:  # the instance the ORM loads, every field converted
                    orm = Task.objects.get(pk=task.pk)
                    assert {f.attname: getattr(locked, f.attname) for f in fields} == {
                        f.attname: getattr(orm, f.attname) for f in fields
                    }
                    assert locked._state.adding is False
            raise Rollback
    except Rollback:
        pass
