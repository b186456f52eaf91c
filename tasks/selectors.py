"""Reads of tasks for the API: querysets shaped so a page costs a fixed number of queries;
and the reads on every agent's path, as SQL built once: the question every check_response
reads, and the questions and unseen feedback every claim's answer carries."""

from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce

from aiworker import errors
from aiworker.sql_once import Columns, instance_from_row, one_row, select_list
from tasks.models import Task, TaskEvent, TaskFeedback, TaskQuestion


def _open_questions() -> Any:
    return Coalesce(
        Subquery(
            TaskQuestion.objects.filter(task=OuterRef("pk"), answered_at__isnull=True)
            .order_by()
            .values("task")
            .annotate(n=Count("pk"))
            .values("n")[:1]
        ),
        0,
    )


def _tasks() -> QuerySet[Task]:
    return Task.objects.select_related("project", "assigned_agent").annotate(
        open_questions=_open_questions()
    )


def task_list() -> QuerySet[Task]:
    """Every task with what a list row shows: 1 query for the page + 1 for dependencies."""
    return _tasks().prefetch_related(
        Prefetch(
            "depends_on", queryset=Task.objects.only("pk").order_by("pk"), to_attr="dependency_list"
        )
    )


def task_get(*, task_id: int) -> Task:
    """One task with its questions and dependencies, or NotFound."""
    task = (
        _tasks()
        .prefetch_related(
            Prefetch(
                "questions",
                queryset=TaskQuestion.objects.select_related("agent", "answered_by"),
            ),
            Prefetch(
                "depends_on",
                queryset=Task.objects.only("pk", "title", "state").order_by("pk"),
                to_attr="dependency_list",
            ),
            Prefetch("dependents", queryset=Task.objects.only("pk").order_by("pk")),
            Prefetch("subtasks", queryset=Task.objects.only("pk", "parent_id").order_by("pk")),
        )
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        raise errors.NotFound(f"Task {task_id} does not exist.")
    return task


def task_exists(*, task_id: int) -> None:
    if not Task.objects.filter(pk=task_id).exists():
        raise errors.NotFound(f"Task {task_id} does not exist.")


def task_questions(*, task_id: int) -> QuerySet[TaskQuestion]:
    task_exists(task_id=task_id)
    return TaskQuestion.objects.filter(task_id=task_id).select_related("agent", "answered_by")


def question_with_task_holder(*, question_id: int) -> tuple[TaskQuestion, int | None] | None:
    """`TaskQuestion.objects.select_related("answered_by").get(pk=…)` with its task's assigned
    agent id, or None: one statement built once (aiworker/sql_once.py). Every check_response
    reads its question at its start and each time it is woken."""
    row = one_row(_question_lookup(connection.vendor), [question_id])
    if row is None:
        return None
    return _question_from_row(row), row[-1]


@cache
def _question_lookup(vendor: str) -> str:
    q = connection.ops.quote_name
    select, joins, _, _ = _questions_with_answerer(vendor)
    return (
        f"{select}, t.{q('assigned_agent_id')}{joins}"
        f" INNER JOIN {q(Task._meta.db_table)} t ON t.id = q.task_id WHERE q.id = %s"
    )


def questions_and_unseen_feedback(*, task_id: int) -> tuple[list[TaskQuestion], list[TaskFeedback]]:
    """`task.questions.select_related("answered_by")` and the task's unseen feedback, oldest
    first, as two statements built once: every claim's answer (and get_context) carries them,
    and compiling the two querysets cost a fifth of a claim's server CPU (docs/PERFORMANCE.md).
    """
    questions_sql, feedback_sql, feedback_fields = _context_lookup(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(questions_sql, [task_id])
        question_rows = cursor.fetchall()
        cursor.execute(feedback_sql, [task_id])
        feedback_rows = cursor.fetchall()
    feedback = [instance_from_row(TaskFeedback, feedback_fields, row) for row in feedback_rows]
    return [_question_from_row(row) for row in question_rows], feedback


@cache
def _context_lookup(vendor: str) -> tuple[str, str, Columns]:
    q = connection.ops.quote_name
    select, joins, _, _ = _questions_with_answerer(vendor)
    # The order is TaskQuestion.Meta.ordering.
    questions = f"{select}{joins} WHERE q.task_id = %s ORDER BY q.asked_at, q.id"
    feedback_columns, feedback_fields = select_list(TaskFeedback, "f")
    feedback = (
        f"SELECT {feedback_columns} FROM {q(TaskFeedback._meta.db_table)} f"
        " WHERE f.task_id = %s AND f.seen_at IS NULL ORDER BY f.created_at, f.id"
    )
    return questions, feedback, feedback_fields


@cache
def _questions_with_answerer(vendor: str) -> tuple[str, str, Columns, Columns]:
    """What `select_related("answered_by")` reads, as `SELECT …` and ` FROM … JOIN …`: a row's
    first columns are the question's (`q`), then its answerer's (`u`); and their fields."""
    q = connection.ops.quote_name
    user_model = get_user_model()
    question_columns, question_fields = select_list(TaskQuestion, "q")
    user_columns, user_fields = select_list(user_model, "u")
    joins = (
        f" FROM {q(TaskQuestion._meta.db_table)} q"
        f" LEFT OUTER JOIN {q(user_model._meta.db_table)} u ON u.id = q.answered_by_id"
    )
    return f"SELECT {question_columns}, {user_columns}", joins, question_fields, user_fields


def _question_from_row(row: tuple) -> TaskQuestion:
    """The question of a `_questions_with_answerer` row, with who answered it loaded."""
    _, _, question_fields, user_fields = _questions_with_answerer(connection.vendor)
    user_model = get_user_model()
    split = len(question_fields)
    question = instance_from_row(TaskQuestion, question_fields, row[:split])
    user = None
    if question.answered_by_id is not None and row[split] is not None:
        user = instance_from_row(user_model, user_fields, row[split : split + len(user_fields)])
    TaskQuestion._meta.get_field("answered_by").set_cached_value(question, user)  # type: ignore[union-attr]
    return question


def task_events(*, task_id: int) -> QuerySet[TaskEvent]:
    """The task's timeline, oldest first."""
    task_exists(task_id=task_id)
    return (
        TaskEvent.objects.filter(task_id=task_id)
        .select_related("actor_user", "actor_agent")
        .order_by("created_at", "id")
    )


def project_by_ref(ref: Any, *, field: str = "project") -> Any:
    """A project named by id or slug, as clients and the board both do; InvalidInput if none."""
    from projects.models import Project

    text = str(ref).strip()
    lookup: dict[str, Any] = {"pk": int(text)} if text.isdigit() else {"slug": text}
    project = Project.objects.filter(**lookup).first()
    if project is None:
        raise errors.InvalidInput(
            f"Project {text!r} does not exist.", fields={field: [f"Unknown project {text!r}."]}
        )
    return project
