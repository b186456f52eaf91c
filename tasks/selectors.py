"""Reads of tasks for the API: querysets shaped so a page costs a fixed number of queries."""

from typing import Any

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce

from aiworker import errors
from tasks.models import Task, TaskEvent, TaskQuestion


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
