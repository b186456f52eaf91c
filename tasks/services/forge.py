"""A task's writes on its project's forge (SPEC §9): its branch and pull request, merges,
pushes, and reconciling Gitea's PR state. Each service reaches the forge through the interface
of projects/forges/ (Gitea or local). Gitea's webhook deliveries are processed in
tasks/gitea_deliveries.py; connecting a project to Gitea is projects/services.py's.

No database transaction is held open while the forge is called: each service calls the forge
first (every call is idempotent or checked before it is repeated), then records the outcome in
a short transaction on a locked row.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from aiworker import errors, live
from aiworker.actors import Actor
from aiworker.jobs import start_job_on_commit
from projects import forges
from projects.models import Project
from projects.services import forge_of, gitea_client, repo_of
from tasks import services as task_services
from tasks.models import Task, TaskEvent, TaskFeedback
from tasks.states import TaskState

logger = logging.getLogger(__name__)

S = TaskState
BRANCH_PREFIX = "task/"
SLUG_MAX = 40
ZERO_SHA = "0" * 40
BASE_RE = re.compile(r"^[A-Za-z0-9._/-]{1,100}$")
# Comments the platform writes on a PR start with this, so they never come back as feedback.
OWN_COMMENT_MARK = "AiWorker:"
# States in which a task's PR is still worth watching (the beat reconciles them).
PR_WATCHED_STATES = (S.IN_PROGRESS, S.NEEDS_INPUT, S.READY_TO_TEST, S.APPROVED, S.CANCELLED)


# --- helpers ----------------------------------------------------------------------------------


def branch_name_for(task: Task) -> str:
    slug = slugify(task.title)[:SLUG_MAX].strip("-") or "task"
    return f"{BRANCH_PREFIX}{task.pk}-{slug}"


def task_id_from_branch(ref: str) -> int | None:
    """The task id in `task/<id>-<slug>` (with or without `refs/heads/`), else None."""
    match = re.match(r"^(?:refs/heads/)?task/(\d+)-", ref or "")
    return int(match.group(1)) if match else None


def task_url(task: Task) -> str:
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}/projects/{task.project.slug}/tasks/{task.pk}/"


def _load_task(task_id: Any, *, actor: Actor) -> Task:
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise errors.InvalidInput(
            "task_id must be an integer.", fields={"task_id": ["Not an integer."]}
        )
    task = Task.objects.select_related("project").filter(pk=task_id).first()
    if task is None:
        raise errors.NotFound(f"Task {task_id} does not exist.")
    if actor.kind == "agent" and actor.agent and task.assigned_agent_id != actor.agent.pk:
        raise errors.PermissionDenied(
            f"Task {task.pk} is not assigned to agent {actor.agent.name}."
        )
    return task


def record_task_change(
    task_id: int, *, actor: Actor, kind: str, message: str, **fields: Any
) -> Task:
    """Save changed task fields and one TaskEvent, on the locked row, then tell the board."""
    with transaction.atomic():
        task = Task.objects.select_for_update().select_related("project").get(pk=task_id)
        changed = [name for name, value in fields.items() if getattr(task, name) != value]
        for name in changed:
            setattr(task, name, fields[name])
        if changed:
            task.save(update_fields=[*changed, "updated_at"])
        task_services.record_event(
            task=task, kind=kind, actor=actor, message=message, payload=_jsonable(fields)
        )
        live.broadcast_on_commit(project_id=task.project_id, event="task.updated", data=_card(task))
    return task


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if isinstance(v, str | int | bool) or v is None}


def _card(task: Task) -> dict[str, Any]:
    return {
        "id": task.pk,
        "project": task.project_id,
        "title": task.title,
        "state": task.state,
        "branch_name": task.branch_name,
        "pr_url": task.pr_url,
        "pr_number": task.pr_number,
        "preview_url": task.preview_url,
    }


# --- task branch and pull request -------------------------------------------------------------


def task_create_branch(*, task_id: int, actor: Actor, base: str | None = None) -> Task:
    """Create the task's branch `task/<id>-<slug>` from `base` (the default branch)."""
    if base is not None and (not isinstance(base, str) or not BASE_RE.match(base)):
        raise errors.InvalidInput(
            "base must be a branch name.", fields={"base": ["Letters, digits, . _ / - only."]}
        )
    task = _load_task(task_id, actor=actor)
    name = task.branch_name or branch_name_for(task)
    base = base or task.project.default_branch
    created = forge_of(task.project).create_branch(name=name, base=base)
    if not created and task.branch_name == name:
        return task  # a retry: nothing new to record
    message = f"Branch {name} {'created from ' + base if created else 'already existed'}."
    return record_task_change(
        task.pk, actor=actor, kind="branch_created", message=message, branch_name=name
    )


def pull_request_body(task: Task, summary: str) -> str:
    lines = [f"Task #{task.pk}: {task.title}", "", f"Task: {task_url(task)}", ""]
    summary = (summary or task.description or "").strip()
    if summary:
        lines += ["## Summary", "", summary[:5000]]
    return "\n".join(lines)


def task_open_pull_request(
    *, task_id: int, actor: Actor, title: str | None = None, body: str | None = None
) -> Task:
    """Open the PR task branch -> default branch, or find the one already open (a retry never
    makes a second PR: the forge looks for the open one first)."""
    title = task_services.clean_text(title, field="title", max_length=255) or None
    body = task_services.clean_text(body, field="body")
    task = _load_task(task_id, actor=actor)
    if not task.branch_name:
        raise errors.Conflict(f"Task {task.pk} has no branch yet: call create_branch first.")
    pr, opened = forge_of(task.project).open_pull_request(
        head=task.branch_name,
        base=task.project.default_branch,
        title=title or f"Task #{task.pk}: {task.title}"[:255],
        body=pull_request_body(task, body),
    )
    if not opened and task.pr_number == pr.number and task.pr_url == pr.html_url:
        return task
    return record_task_change(
        task.pk,
        actor=actor,
        kind="pr_opened",
        message=f"Pull request #{pr.number} {'opened' if opened else 'found open'}: {pr.html_url}",
        pr_number=pr.number,
        pr_url=pr.html_url,
        head_sha=pr.head_sha or task.head_sha,
    )


def task_merge_pull_request(*, task_id: int, actor: Actor) -> forges.PullRequest:
    """Merge the task's PR into its base; a PR merged already is fine. Conflict on conflicts."""
    task = _load_task(task_id, actor=actor)
    if not task.pr_number:
        raise errors.Conflict(f"Task {task.pk} has no pull request to merge.")
    pr = forge_of(task.project).merge_pull_request(
        number=task.pr_number, message=f"Task #{task.pk}: {task.title}"
    )
    if not TaskEvent.objects.filter(task=task, kind="pr_merged").exists():
        record_task_change(
            task.pk,
            actor=actor,
            kind="pr_merged",
            message=f"Pull request #{pr.number} merged into {pr.base_ref}.",
        )
    return pr


def comment_on_pull_request(*, task: Task, body: str) -> None:
    """Say something on the task's PR (best effort: the timeline has it already)."""
    if not task.pr_number:
        return
    if task.project.forge == Project.Forge.GITEA and not settings.GITEA_URL:
        return
    try:
        forge_of(task.project).comment(number=task.pr_number, body=f"{OWN_COMMENT_MARK} {body}")
    except errors.DomainError:
        logger.warning("could not comment on PR #%s of task %s", task.pr_number, task.pk)


def task_branch_pushed(*, project: Project, ref: str, after: str, actor: Actor) -> str:
    """A push moved a branch (Gitea's push webhook, or a push to the local forge): the task
    whose branch it is records the new head, and its preview redeploys. What happened, as text
    ("ignored: …" when the push concerns no task)."""
    branch = ref.removeprefix("refs/heads/")
    task = Task.objects.filter(project=project, branch_name=branch).first() if branch else None
    if task is None:
        task_id = task_id_from_branch(ref)
        task = Task.objects.filter(project=project, pk=task_id).first() if task_id else None
    if task is None:
        return f"ignored: push to {branch[:100]}, no task's branch"
    if not after or after == ZERO_SHA:
        return f"ignored: branch {branch[:100]} deleted"
    record_task_change(
        task.pk,
        actor=actor,
        kind="pushed",
        message=f"Pushed {after[:10]} to {branch}.",
        head_sha=after,
        branch_name=task.branch_name or branch,
    )
    start_job_on_commit("deployments.jobs.deploy_preview", task_id=task.pk, commit_sha=after)
    return f"task {task.pk}: head {after[:10]}"


# --- reconcile --------------------------------------------------------------------------------


def task_reconcile_pull_request(*, task_id: int, actor: Actor) -> str:
    """Bring the task's PR state and its review feedback in from Gitea (missed webhooks)."""
    task = _load_task(task_id, actor=actor)
    if not task.pr_number:
        return "no pull request"
    owner, repo = repo_of(task.project)
    with gitea_client() as client:
        pr = client.pulls.get(owner=owner, repo=repo, number=task.pr_number)
        notes = []
        if pr.state == "open":
            notes += client.comments.list(owner=owner, repo=repo, number=pr.number)
            notes += client.reviews.list(owner=owner, repo=repo, number=pr.number)
    outcome = pull_request_state_changed(task_id=task.pk, pr=pr, actor=actor)
    for note in notes:
        if note.body.startswith(OWN_COMMENT_MARK) or not note.body.strip():
            continue
        source = (
            TaskFeedback.Source.GITEA_REVIEW
            if note.kind == "review"
            else TaskFeedback.Source.GITEA_COMMENT
        )
        task_services.feedback_add(
            task_id=task.pk,
            source=source,
            author=note.author,
            body=note.body[: settings.TEXT_FIELD_MAX],
            external_id=f"{note.kind}-{note.id}",
            actor=actor,
        )
    return outcome


def pull_request_state_changed(*, task_id: int, pr: forges.PullRequest, actor: Actor) -> str:
    """Record a PR's merge or close once; start the preview's destroy job when it ends."""
    if pr.state == "open":
        if pr.head_sha:
            task = Task.objects.filter(pk=task_id).only("head_sha").first()
            if task is not None and task.head_sha != pr.head_sha:
                record_task_change(
                    task_id, actor=actor, kind="pr_updated", message="", head_sha=pr.head_sha
                )
                return "updated"
        return "open"
    kind = "pr_merged" if pr.merged else "pr_closed"
    if TaskEvent.objects.filter(task_id=task_id, kind=kind).exists():
        return kind
    verb = f"merged into {pr.base_ref}" if pr.merged else "closed without merging"
    record_task_change(
        task_id, actor=actor, kind=kind, message=f"Pull request #{pr.number} {verb}."
    )
    start_job_on_commit("deployments.jobs.destroy_preview", task_id=task_id)
    return kind


def tasks_to_reconcile() -> list[int]:
    return list(
        Task.objects.filter(
            pr_number__isnull=False,
            state__in=PR_WATCHED_STATES,
            project__forge=Project.Forge.GITEA,
        )
        .exclude(project__gitea_repo="")
        .values_list("pk", flat=True)
    )
