"""Rules that decide whether a task may move: dependencies, WIP limits, the dependency DAG."""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet

from tasks.models import Task
from tasks.states import ACTIVE_STATES, DEPENDENCY_MET_STATES, TaskState


def unmet_dependencies_q() -> Exists:
    """True for a task that depends on at least one task not yet in staging or production."""
    through = Task.depends_on.through
    return Exists(
        through.objects.filter(from_task_id=OuterRef("pk")).exclude(
            to_task__state__in=DEPENDENCY_MET_STATES
        )
    )


def unfinished_subtasks_q() -> Exists:
    """True for a parent with a subtask not yet in staging or production (nor cancelled): a
    split task waits for its subtasks, then is claimable for the final integration work."""
    return Exists(
        Task.objects.filter(parent_id=OuterRef("pk")).exclude(
            state__in=[*DEPENDENCY_MET_STATES, TaskState.CANCELLED]
        )
    )


def claimable(queryset: QuerySet[Task] | None = None) -> QuerySet[Task]:
    """Backlog tasks whose dependencies and subtasks are all done, in claim order."""
    queryset = Task.objects.all() if queryset is None else queryset
    return (
        queryset.filter(state=TaskState.BACKLOG)
        .filter(~unmet_dependencies_q())
        .filter(~unfinished_subtasks_q())
        .order_by("-priority", "position", "created_at", "id")
    )


def unmet_dependencies(task: Task) -> list[Task]:
    """What a task still waits for: its dependencies, and the subtasks it was split into."""
    deps = list(task.depends_on.exclude(state__in=DEPENDENCY_MET_STATES))
    subtasks = list(task.subtasks.exclude(state__in=[*DEPENDENCY_MET_STATES, TaskState.CANCELLED]))
    return sorted({t.pk: t for t in deps + subtasks}.values(), key=lambda t: t.pk)


def wip_allows(*, project_id: int, wip_limit: int | None, state: str, adding: int = 1) -> bool:
    """Whether `adding` more tasks fit in the column `state` of the project.

    The in-progress limit counts every task an agent holds (in progress and needs input): a
    task whose agent asked a question still holds its slot, so asking and answering never
    push the column past its limit.
    """
    if wip_limit is None:
        return True
    states = ACTIVE_STATES if state == TaskState.IN_PROGRESS else {state}
    current = Task.objects.filter(project_id=project_id, state__in=states).count()
    return current + adding <= wip_limit


def find_cycle(edges: Iterable[tuple[int, int]]) -> list[int] | None:
    """A cycle in the graph `task -> task it depends on`, as a list of ids, or None."""
    graph: dict[int, list[int]] = {}
    for src, dst in edges:
        graph.setdefault(src, []).append(dst)
        graph.setdefault(dst, [])
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    for root in sorted(graph):
        if colour[root] != white:
            continue
        # Iterative DFS, so a long chain cannot hit the recursion limit.
        stack: list[tuple[int, int]] = [(root, 0)]
        path: list[int] = []
        while stack:
            node, index = stack.pop()
            if index == 0:
                colour[node] = grey
                path.append(node)
            neighbours = graph[node]
            if index < len(neighbours):
                stack.append((node, index + 1))
                nxt = neighbours[index]
                if colour[nxt] == grey:
                    return [*path[path.index(nxt) :], nxt]
                if colour[nxt] == white:
                    stack.append((nxt, 0))
            else:
                colour[node] = black
                path.pop()
    return None


def project_dependency_edges(project_id: int) -> list[tuple[int, int]]:
    through = Task.depends_on.through
    return list(
        through.objects.filter(from_task__project_id=project_id).values_list(
            "from_task_id", "to_task_id"
        )
    )


def agent_model() -> Any:
    # The agents app stands above this one (STYLE: floors); the model is reached through the
    # relation, not imported.
    return Task._meta.get_field("assigned_agent").related_model


def held_task_ids(
    agent_id: int, *, excluding: int | None = None, limit: int | None = None
) -> list[int]:
    """The active tasks an agent holds, oldest first (a plain read)."""
    held = Task.objects.filter(assigned_agent_id=agent_id, state__in=ACTIVE_STATES)
    if excluding is not None:
        held = held.exclude(pk=excluding)
    ids = held.order_by("id").values_list("pk", flat=True)
    return list(ids[:limit] if limit is not None else ids)


def holder_refusal(*, agent: Any, task: Task) -> str:
    """Why `agent` may not hold `task` as an active task, or "" when it may.

    The one place the rule "an agent holds at most AGENT_MAX_ACTIVE tasks" is decided.
    """
    if agent.revoked_at is not None:
        return f"Agent {agent.name} is revoked."
    if agent.status == "offline":
        return f"Agent {agent.name} is offline."
    if agent.project_id and agent.project_id != task.project_id:
        return f"Agent {agent.name} may only work on another project."
    held = held_task_ids(agent.pk, excluding=task.pk)
    if len(held) >= settings.AGENT_MAX_ACTIVE:
        names = ", ".join(f"#{pk}" for pk in held)
        return (
            f"Agent {agent.name} already holds {names} "
            f"(at most {settings.AGENT_MAX_ACTIVE} active task(s) per agent)."
        )
    return ""
