"""Snapshots of what the API could write, to assert that a refused request changed nothing."""

from typing import Any

from agents.models import Agent
from projects.models import Project
from tasks.models import Task, TaskEvent, TaskFeedback, TaskQuestion


def db_snapshot() -> dict[str, Any]:
    return {
        "projects": list(Project.objects.order_by("pk").values()),
        "tasks": list(Task.objects.order_by("pk").values()),
        "deps": sorted(Task.depends_on.through.objects.values_list("from_task_id", "to_task_id")),
        "events": TaskEvent.objects.count(),
        "questions": list(TaskQuestion.objects.order_by("pk").values()),
        "feedback": TaskFeedback.objects.count(),
        "agents": list(Agent.objects.order_by("pk").values()),
    }
