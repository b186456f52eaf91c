"""Creating and editing tasks, and their dependency DAG."""

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

from aiworker import errors, live
from aiworker.actors import Actor
from projects.models import Project
from tasks import rules
from tasks.models import Priority, Task
from tasks.services.transitions import _next_position, lock_task, record_event, task_data
from tasks.services.validation import clean_labels, clean_priority, clean_spec, clean_text
from tasks.states import TaskState

S = TaskState


@transaction.atomic
def task_create(
    *,
    project: Project,
    title: Any,
    actor: Actor,
    description: Any = "",
    priority: Any = Priority.MEDIUM,
    labels: Any = (),
    parent_id: int | None = None,
    depends_on_ids: Sequence[int] = (),
    spec: dict[str, Any] | None = None,
) -> Task:
    title = clean_text(title, field="title", required=True, max_length=settings.TASK_TITLE_MAX)
    description = clean_text(description, field="description")
    priority = clean_priority(priority)
    stored_labels = clean_labels(list(labels) if isinstance(labels, tuple) else labels)
    parent = None
    if parent_id is not None:
        parent = Task.objects.filter(pk=parent_id, project=project).first()
        if parent is None:
            raise errors.InvalidInput(
                f"Parent task {parent_id} does not exist in project {project.slug}.",
                fields={"parent": ["Unknown task in this project."]},
            )
    spec_values = clean_spec(spec or {})
    task = Task.objects.create(
        project=project,
        title=title,
        description=description,
        priority=priority,
        labels=stored_labels,
        parent=parent,
        position=_next_position(project.pk, S.BACKLOG),
        created_by=actor.user,
        **spec_values,
    )
    if depends_on_ids:
        _set_dependencies(task=task, depends_on_ids=depends_on_ids)
    record_event(task=task, kind="created", actor=actor, to_state=task.state, message=title)
    live.broadcast_on_commit(project_id=project.pk, event="task.created", data=task_data(task))
    return task


@transaction.atomic
def task_update(
    *,
    task_id: int,
    actor: Actor,
    title: Any = None,
    description: Any = None,
    priority: Any = None,
    labels: Any = None,
    spec: dict[str, Any] | None = None,
) -> Task:
    task = lock_task(task_id)
    changed: dict[str, Any] = {}
    if title is not None:
        changed["title"] = clean_text(
            title, field="title", required=True, max_length=settings.TASK_TITLE_MAX
        )
    if description is not None:
        changed["description"] = clean_text(description, field="description")
    if priority is not None:
        changed["priority"] = clean_priority(priority)
    if labels is not None:
        changed["labels"] = clean_labels(labels)
    if spec:
        changed.update(clean_spec(spec))
    changed = {k: v for k, v in changed.items() if getattr(task, k) != v}
    if not changed:
        return task
    for name, value in changed.items():
        setattr(task, name, value)
    task.save(update_fields=[*changed, "updated_at"])
    record_event(task=task, kind="edited", actor=actor, payload={"fields": sorted(changed)})
    live.broadcast_on_commit(project_id=task.project_id, event="task.updated", data=task_data(task))
    return task


@transaction.atomic
def task_set_dependencies(*, task_id: int, depends_on_ids: Sequence[int], actor: Actor) -> Task:
    task = lock_task(task_id)
    _set_dependencies(task=task, depends_on_ids=depends_on_ids)
    record_event(
        task=task,
        kind="dependencies_changed",
        actor=actor,
        payload={"depends_on": sorted(set(depends_on_ids))},
    )
    live.broadcast_on_commit(project_id=task.project_id, event="task.updated", data=task_data(task))
    return task


def _set_dependencies(*, task: Task, depends_on_ids: Iterable[int]) -> None:
    ids = set(depends_on_ids)
    if any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
        raise errors.InvalidInput(
            "depends_on must be task ids.", fields={"depends_on": ["Not integers."]}
        )
    known = set(
        Task.objects.filter(pk__in=ids, project_id=task.project_id).values_list("pk", flat=True)
    )
    if ids - known:
        missing = ", ".join(str(i) for i in sorted(ids - known))
        raise errors.InvalidInput(
            f"Unknown tasks in this project: {missing}.",
            fields={"depends_on": [f"Unknown: {missing}."]},
        )
    edges = [e for e in rules.project_dependency_edges(task.project_id) if e[0] != task.pk]
    edges += [(task.pk, dep) for dep in ids]
    cycle = rules.find_cycle(edges)
    if cycle:
        path = " -> ".join(f"#{i}" for i in cycle)
        raise errors.InvalidInput(
            f"These dependencies would make a cycle: {path}.",
            fields={"depends_on": [f"Cycle: {path}."]},
        )
    task.depends_on.set(ids)
