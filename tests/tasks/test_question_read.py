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


def test_the_claim_answers_reads_load_what_the_orm_loads():
    """`questions_and_unseen_feedback` (every claim's answer): the task's questions in the
    model's order with who answered them, and only its unseen feedback, oldest first."""
    from datetime import timedelta

    from tasks.models import TaskFeedback
    from tasks.selectors import questions_and_unseen_feedback

    agent, _ = factories.make_agent()
    task = factories.make_task(state="in_progress", assigned_agent=agent)
    other = factories.make_task()
    user = factories.make_user()
    now = timezone.now()
    TaskQuestion.objects.create(task=task, agent=agent, question="Open?", options=["x"])
    answered = TaskQuestion.objects.create(task=task, agent=agent, question="Which?")
    TaskQuestion.objects.filter(pk=answered.pk).update(
        answer="b", answered_by=user, answered_at=now, asked_at=now - timedelta(hours=1)
    )
    TaskQuestion.objects.create(task=other, question="Not this task's")
    seen = TaskFeedback.objects.create(task=task, author="ann", body="seen")
    TaskFeedback.objects.filter(pk=seen.pk).update(seen_at=now)
    TaskFeedback.objects.create(task=task, author="bob", body="later")
    first = TaskFeedback.objects.create(task=task, author="cy", body="first", source="gitea_review")
    TaskFeedback.objects.filter(pk=first.pk).update(created_at=now - timedelta(days=1))
    TaskFeedback.objects.create(task=other, body="not this task's")

    orm_questions = list(task.questions.select_related("answered_by"))
    orm_feedback = list(task.feedback.filter(seen_at__isnull=True).order_by("created_at", "id"))
    with CaptureQueriesContext(connection) as queries:
        questions, feedback = questions_and_unseen_feedback(task_id=task.pk)
        users = [q.answered_by for q in questions]  # loaded with them: no further query
    assert len(queries.captured_queries) == 2
    assert [_fields(q) for q in questions] == [_fields(q) for q in orm_questions]
    assert [q.question for q in questions] == ["Which?", "Open?"]  # asked_at order
    assert users[0] is not None and _fields(users[0]) == _fields(user) and users[1] is None
    assert [_fields(f) for f in feedback] == [_fields(f) for f in orm_feedback]
    assert [f.body for f in feedback] == ["first", "later"]
    assert questions_and_unseen_feedback(task_id=987654) == ([], [])
