"""`question_with_task_holder`, the question read every check_response runs as SQL built once
(tasks/selectors.py), loads what the ORM loads: the question's fields through their converters
(JSON options, aware datetimes on MariaDB), who answered it, and its task's assigned agent."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks.models import TaskQuestion
from tasks.selectors import question_with_task_holder
from tests import factories

pytestmark = pytest.mark.django_db


def _fields(obj: object) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}  # type: ignore[attr-defined]


@pytest.mark.parametrize("answered", [False, True])
def test_the_question_read_loads_what_the_orm_loads(answered):
    agent, _ = factories.make_agent()
    task = factories.make_task(state="needs_input", assigned_agent=agent)
    question = TaskQuestion.objects.create(
        task=task, agent=agent, question="Which?", options=["a", {"b": [1, 2]}]
    )
    if answered:
        user = factories.make_user()
        TaskQuestion.objects.filter(pk=question.pk).update(
            answer="a", answered_by=user, answered_at=timezone.now()
        )
    orm = TaskQuestion.objects.select_related("answered_by").get(pk=question.pk)
    with CaptureQueriesContext(connection) as queries:
        found = question_with_task_holder(question_id=question.pk)
        assert found is not None
        loaded, holder_id = found
        answered_by = loaded.answered_by  # loaded with it: no second query
    assert len(queries.captured_queries) == 1
    assert _fields(loaded) == _fields(orm)
    assert loaded.options == ["a", {"b": [1, 2]}] and loaded._state.adding is False
    assert holder_id == agent.pk
    if answered:
        assert answered_by is not None and _fields(answered_by) == _fields(orm.answered_by)
        assert loaded.answered_at is not None and loaded.answered_at.tzinfo is not None
    else:
        assert answered_by is None and loaded.is_open


def test_a_missing_question_reads_as_none_and_an_unassigned_task_as_no_holder():
    assert question_with_task_holder(question_id=987654) is None
    task = factories.make_task()
    question = TaskQuestion.objects.create(task=task, question="Go?")
    found = question_with_task_holder(question_id=question.pk)
    assert found is not None and found[1] is None
