"""Reads for the agent console and the subtask DAG."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from agents.models import Agent
from tasks.models import Task, TaskEvent


def console_agents(*, project_slug: str | None = None) -> QuerySet[Agent]:
    agents = Agent.objects.select_related("project", "current_task").filter(revoked_at__isnull=True)
    if project_slug:
        agents = agents.filter(project__slug=project_slug)
    return agents.order_by("name")


def progress_lines(*, agent_ids: list[int], per_agent: int = 20) -> dict[int, list[TaskEvent]]:
    """The latest `log_progress` lines of each agent, oldest first."""
    lines: dict[int, list[TaskEvent]] = {}
    for agent_id in agent_ids:
        events = (
            TaskEvent.objects.filter(kind="progress", actor_agent_id=agent_id)
            .select_related("task")
            .order_by("-created_at", "-id")[:per_agent]
        )
        lines[agent_id] = list(reversed(events))
    return lines


@dataclass
class DagNode:
    task: Task
    layer: int = 0
    x: int = 0
    y: int = 0
    depends_on: list[int] = field(default_factory=list)


NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 180, 44, 60, 16, 8


def subtask_dag(task: Task) -> dict:
    """The parent's subtasks laid out in layers: a task sits right of everything it needs."""
    subtasks = list(task.subtasks.order_by("id").prefetch_related("depends_on"))
    nodes = {t.pk: DagNode(task=t) for t in subtasks}
    for node in nodes.values():
        node.depends_on = [d.pk for d in node.task.depends_on.all() if d.pk in nodes]
    # Longest path from a root; the DAG is acyclic (validated when written), so this ends.
    for _ in range(len(nodes)):
        changed = False
        for node in nodes.values():
            layer = max((nodes[d].layer + 1 for d in node.depends_on), default=0)
            if layer != node.layer:
                node.layer, changed = layer, True
        if not changed:
            break
    rows: dict[int, int] = {}
    for node in sorted(nodes.values(), key=lambda n: (n.layer, n.task.pk)):
        row = rows.get(node.layer, 0)
        rows[node.layer] = row + 1
        node.x = PAD + node.layer * (NODE_W + GAP_X)
        node.y = PAD + row * (NODE_H + GAP_Y)
    edges = [
        {
            "x1": nodes[d].x + NODE_W,
            "y1": nodes[d].y + NODE_H // 2,
            "x2": n.x,
            "y2": n.y + NODE_H // 2,
        }
        for n in nodes.values()
        for d in n.depends_on
    ]
    layers = max((n.layer for n in nodes.values()), default=-1) + 1
    return {
        "parent": task,
        "nodes": list(nodes.values()),
        "edges": edges,
        "width": PAD * 2 + layers * NODE_W + max(layers - 1, 0) * GAP_X,
        "height": PAD * 2 + max(rows.values(), default=0) * (NODE_H + GAP_Y),
        "node_w": NODE_W,
        "node_h": NODE_H,
    }
