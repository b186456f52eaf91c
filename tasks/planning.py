"""Planning: splitting a task into subtasks that form a DAG, checked whole before any write."""

import re
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

from aiworker import errors, live
from aiworker.actors import Actor
from tasks import rules
from tasks.models import Task
from tasks.services import clean_priority, clean_text, lock_task, record_event, task_data
from tasks.services import task_create as _task_create

MAX_SUBTASKS = 50
NEW_REF = re.compile(r"^new:(\d+)$")


def _invalid(index: int, message: str) -> errors.InvalidInput:
    return errors.InvalidInput(
        f"subtasks[{index}]: {message}", fields={f"subtasks[{index}]": [message]}
    )


def _clean_refs(index: int, refs: Any, count: int) -> tuple[set[int], set[int]]:
    """Split one subtask's `depends_on` into (indices of new subtasks, existing task ids).

    An integer is the id of an existing task; the string "new:N" is the N-th subtask (0-based)
    of the same call, whose id does not exist yet.
    """
    if refs is None:
        return set(), set()
    if not isinstance(refs, list | tuple):
        raise _invalid(index, "depends_on must be a list.")
    new: set[int] = set()
    existing: set[int] = set()
    for ref in refs:
        if isinstance(ref, int) and not isinstance(ref, bool):
            existing.add(ref)
            continue
        match = NEW_REF.match(ref) if isinstance(ref, str) else None
        if match is None:
            raise _invalid(
                index, f"depends_on entry {ref!r} is neither a task id nor 'new:<index>'."
            )
        target = int(match.group(1))
        if target >= count:
            raise _invalid(index, f"'{ref}' refers to no subtask (there are {count}).")
        if target == index:
            raise _invalid(index, "a subtask cannot depend on itself.")
        new.add(target)
    return new, existing


@transaction.atomic
def task_create_subtasks(
    *, parent_id: int, subtasks: Sequence[dict[str, Any]], actor: Actor
) -> list[Task]:
    """Create `subtasks` of the parent with their dependencies, or raise and write nothing.

    Each item is {title, description?, priority?, depends_on?}. The whole graph — existing
    edges of the project plus the new ones — is checked for unknown ids and cycles first.
    """
    parent = lock_task(parent_id)
    if not isinstance(subtasks, list | tuple) or not subtasks:
        raise errors.InvalidInput(
            "subtasks must be a non-empty list.", fields={"subtasks": ["Give at least one."]}
        )
    if len(subtasks) > MAX_SUBTASKS:
        raise errors.InvalidInput(
            f"At most {MAX_SUBTASKS} subtasks in one call.",
            fields={"subtasks": [f"At most {MAX_SUBTASKS}."]},
        )

    cleaned = []
    wanted_ids: set[int] = set()
    for index, item in enumerate(subtasks):
        if not isinstance(item, dict):
            raise _invalid(index, "each subtask is an object {title, description, depends_on}.")
        unknown = set(item) - {"title", "description", "priority", "depends_on"}
        if unknown:
            raise _invalid(index, f"unknown fields: {', '.join(sorted(unknown))}.")
        try:
            title = clean_text(
                item.get("title"), field="title", required=True, max_length=settings.TASK_TITLE_MAX
            )
            description = clean_text(item.get("description"), field="description")
            priority = clean_priority(item.get("priority", parent.priority))
        except errors.InvalidInput as exc:
            raise _invalid(index, exc.message) from None
        new, existing = _clean_refs(index, item.get("depends_on"), len(subtasks))
        wanted_ids |= existing
        cleaned.append((title, description, priority, new, existing))

    known = set(
        Task.objects.filter(pk__in=wanted_ids, project_id=parent.project_id).values_list(
            "pk", flat=True
        )
    )
    if wanted_ids - known:
        missing = ", ".join(f"#{i}" for i in sorted(wanted_ids - known))
        raise errors.InvalidInput(
            f"depends_on names tasks that are not in project {parent.project.slug}: {missing}.",
            fields={"depends_on": [f"Unknown: {missing}."]},
        )

    # New subtasks get stand-in ids below zero, so one graph holds old and new nodes.
    edges = rules.project_dependency_edges(parent.project_id)
    for index, (_t, _d, _p, new, existing) in enumerate(cleaned):
        edges += [(-1 - index, -1 - target) for target in new]
        edges += [(-1 - index, task_id) for task_id in existing]
    cycle = rules.find_cycle(edges)
    if cycle:
        path = " -> ".join(f"new:{-1 - i}" if i < 0 else f"#{i}" for i in cycle)
        raise errors.InvalidInput(
            f"These dependencies would make a cycle: {path}.",
            fields={"depends_on": [f"Cycle: {path}."]},
        )

    created = [
        _task_create(
            project=parent.project,
            title=title,
            description=description,
            priority=priority,
            parent_id=parent.pk,
            actor=actor,
        )
        for title, description, priority, _n, _e in cleaned
    ]
    for task, (_t, _d, _p, new, existing) in zip(created, cleaned, strict=True):
        if new or existing:
            task.depends_on.set([created[i].pk for i in new] + list(existing))
    record_event(
        task=parent,
        kind="subtasks_created",
        actor=actor,
        message=f"{len(created)} subtask(s) created.",
        payload={"subtask_ids": [t.pk for t in created]},
    )
    live.broadcast_on_commit(
        project_id=parent.project_id, event="task.updated", data=task_data(parent)
    )
    return created
