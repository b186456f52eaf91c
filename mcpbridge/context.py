"""The answers agents read: small, JSON-able dicts built from fresh rows (selectors + shaping)."""

from typing import Any

from django.utils.text import slugify

from agents.models import Agent
from aiworker import errors
from projects.forges import get_forge
from projects.models import Project
from projects.selectors import project_by_slug
from tasks.models import Priority, Task, TaskFeedback, TaskQuestion
from tasks.selectors import questions_and_unseen_feedback
from tasks.services import SPEC_FIELDS

BRANCH_SLUG_MAX = 40


def branch_name(task: Task) -> str:
    """`task/<id>-<slug of title>` (SPEC §9); the name Gitea already has wins once it is set."""
    if task.branch_name:
        return task.branch_name
    slug = slugify(task.title)[:BRANCH_SLUG_MAX].strip("-") or "task"
    return f"task/{task.pk}-{slug}"


def clone_url(project: Project) -> str | None:
    """Where the project's forge serves its repository (Gitea's, or the platform's own
    `/git/<slug>.git` for the local forge); None when it has none."""
    return get_forge(project).clone_url()


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def priority_label(value: int) -> str:
    return Priority(value).label.lower()


def specification(task: Task) -> dict[str, str] | None:
    if not task.has_specification:
        return None
    return {name.removeprefix("spec_"): getattr(task, name) for name in SPEC_FIELDS}


def task_summary(task: Task) -> dict[str, Any]:
    return {
        "id": task.pk,
        "title": task.title,
        "state": task.state,
        "priority": priority_label(task.priority),
        "assigned_agent": task.assigned_agent.name if task.assigned_agent else None,
        "parent_id": task.parent_id,
        "depends_on": sorted(t.pk for t in task.depends_on.all()),
    }


def question_data(item: TaskQuestion) -> dict[str, Any]:
    return {
        "question_id": item.pk,
        "task_id": item.task_id,
        "question": item.question,
        "options": item.options,
        "status": "pending" if item.is_open else "answered",
        "answer": item.answer or None,
        "answered_by": item.answered_by.get_username() if item.answered_by else None,
        "answered_at": _iso(item.answered_at),
    }


def feedback_data(item: TaskFeedback) -> dict[str, Any]:
    return {
        "id": item.pk,
        "source": item.source,
        "author": item.author,
        "body": item.body,
        "created_at": _iso(item.created_at),
    }


def task_context(task: Task) -> dict[str, Any]:
    """Everything an agent needs to work on `task` (get_next_task, get_context)."""
    project = task.project
    # One read of the questions serves both lists (this answer is on every claim's path).
    questions, unseen = questions_and_unseen_feedback(task_id=task.pk)
    return {
        "task": {
            "id": task.pk,
            "title": task.title,
            "description": task.description,
            "state": task.state,
            "priority": priority_label(task.priority),
            "specification": specification(task),
            "parent_id": task.parent_id,
            "pr_url": task.pr_url or None,
            "preview_url": task.preview_url or None,
        },
        "project": {
            "slug": project.slug,
            "name": project.name,
            "default_branch": project.default_branch,
        },
        "repo_clone_url": clone_url(project),
        "branch": branch_name(task),
        "answered_questions": [question_data(q) for q in questions if q.answered_at is not None],
        "open_question_ids": [q.pk for q in questions if q.answered_at is None],
        "unseen_feedback": [feedback_data(f) for f in unseen],
        "attempt": task.attempt_count,
        "lease_expires_at": _iso(task.lease_expires_at),
    }


def agent_project(agent: Agent, slug: Any) -> Project | None:
    """The project named by `slug` (None for none given), within the agent's restriction."""
    if slug is None or slug == "":
        return None
    project = project_by_slug(str(slug))
    if project is None:
        raise errors.NotFound(f"Project '{slug}' does not exist. list_projects shows them.")
    if agent.project and agent.project.pk != project.pk:
        raise errors.PermissionDenied(
            f"Agent {agent.name} may only work on project '{agent.project.slug}'."
        )
    return project


def own_task(agent: Agent, task_id: int) -> Task:
    """A task the agent holds; NotFound or PermissionDenied otherwise (reads, no lock)."""
    task = Task.objects.select_related("project").filter(pk=task_id).first()
    if task is None:
        raise errors.NotFound(f"Task {task_id} does not exist.")
    if task.assigned_agent_id != agent.pk:
        raise errors.PermissionDenied(f"Task {task_id} is not assigned to agent {agent.name}.")
    return task


def visible_task(agent: Agent, task_id: int) -> Task:
    """A task within the agent's project restriction (planning tools)."""
    task = Task.objects.select_related("project").filter(pk=task_id).first()
    if task is None:
        raise errors.NotFound(f"Task {task_id} does not exist.")
    if agent.project_id and task.project_id != agent.project_id:
        raise errors.PermissionDenied(
            f"Task {task_id} belongs to another project than agent {agent.name}'s."
        )
    return task
