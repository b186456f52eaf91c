"""The git flow of releases (SPEC §9): merge approved tasks to staging, promote to production.

Merge to staging merges each approved task's PR into the default branch (a conflict stops that
task only: it stays approved and its timeline says why), then brings the staging branch up to
the default branch with a PR that is merged at once and records a staging Release (status
pending, "queued", until the deploy job starts). The boards hear each step as it happens:
`deploy.merging` before the first merge, `deploy.failed` for a task that could not be merged,
`deploy.queued` once the release is recorded, then the deploy's own events. The tasks move
approved -> staging only once the deploy driver reports success
(deployments/services.release_deploy); a failed deploy leaves them approved with a timeline line.
Promotion does the same from staging to production.
Gitea is called outside any database transaction; each bookkeeping step is its own short one.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from aiworker import errors
from aiworker.actors import Actor
from aiworker.jobs import start_job_on_commit
from aiworker.live import broadcast_on_commit
from deployments.models import Environment, Release
from projects import gitea, roles
from projects.forges import Forge
from projects.models import Project
from projects.services import forge_of, repo_of
from tasks import services as task_services
from tasks.models import Task
from tasks.services import forge as task_forge
from tasks.states import TaskState

logger = logging.getLogger(__name__)

S = TaskState
MAX_TASKS = 100


def _clean_task_ids(task_ids: Any) -> list[int]:
    if not isinstance(task_ids, list | tuple) or not task_ids:
        raise errors.InvalidInput(
            "task_ids must be a non-empty list of task ids.",
            fields={"task_ids": ["A non-empty list of integers."]},
        )
    if any(isinstance(i, bool) or not isinstance(i, int) for i in task_ids):
        raise errors.InvalidInput(
            "task_ids must be integers.", fields={"task_ids": ["Not integers."]}
        )
    if len(set(task_ids)) > MAX_TASKS:
        raise errors.InvalidInput(
            f"At most {MAX_TASKS} tasks at once.", fields={"task_ids": ["Too many."]}
        )
    return sorted(set(task_ids))


def _forge_checked(project: Project) -> Forge:
    """The project's forge, refusing (NotConfigured, InvalidInput) before any task is touched."""
    forge = forge_of(project)
    if project.forge == Project.Forge.GITEA:
        repo_of(project)
        gitea.client()  # NotConfigured without GITEA_URL
    else:
        forge.ensure_repository()
    return forge


def _image(project: Project, sha: str) -> str:
    return f"{project.image_repository}:{sha}" if project.image_repository and sha else ""


def _queued(release: Release, *, task_ids: list[int]) -> None:
    """Recorded and waiting for the deploy job: the cards say "<environment> queued"."""
    _broadcast_step(
        project_id=release.project_id,
        event="deploy.queued",
        environment=release.environment,
        task_ids=task_ids,
        status=Release.Status.PENDING,
        release_id=release.pk,
    )
    _deploy_on_commit(release)


def _deploy_on_commit(release: Release) -> None:
    """Deploy after commit. The release's tasks move (approved -> staging, staging ->
    production) only when the deploy reports success (deployments/services.release_deploy);
    a release with no image has nothing to deploy and succeeds at once there."""
    start_job_on_commit("deployments.jobs.deploy_release", release_id=release.pk)


def _broadcast_step(
    *, project_id: int, event: str, environment: str, task_ids: list[int], **data: Any
) -> None:
    """A step of a release with no deployment row yet (merging, queued, a task not merged):
    the same shape as a deploy's events, so boards and the deployments page treat it alike."""
    broadcast_on_commit(
        project_id=project_id,
        event=event,
        data={
            "deployment_id": None,
            "task_id": None,
            "task_ids": task_ids,
            "release_id": data.get("release_id"),
            "environment": environment,
            "status": data.get("status", ""),
            "url": "",
            "error": data.get("error", ""),
        },
    )


def _brought_up_to_date(
    forge: Forge, *, project: Project, environment: str, tasks: list[Task], **pull: str
) -> str:
    """The forge's merge of one branch into the next; when it fails, the cards that said
    "merging" say why before the error reaches the person who asked."""
    try:
        return forge.bring_up_to_date(**pull)
    except errors.DomainError as exc:
        _broadcast_step(
            project_id=project.pk,
            event="deploy.failed",
            environment=environment,
            task_ids=[t.pk for t in tasks],
            status="failed",
            error=f"{environment} not updated: {exc.message}",
        )
        raise


def _fail_task(task: Task, *, actor: Actor, reason: str) -> None:
    task_services.record_event(
        task=task,
        kind="merge_failed",
        actor=actor,
        message=f"Not merged to staging: {reason}",
        payload={"pr_number": task.pr_number},
    )
    task_forge.comment_on_pull_request(task=task, body=f"not merged to staging: {reason}")
    _broadcast_step(
        project_id=task.project_id,
        event="deploy.failed",
        environment=Environment.STAGING,
        task_ids=[task.pk],
        status="failed",
        error=f"#{task.pk} not merged to staging: {reason}",
    )


def release_merge_to_staging(*, task_ids: Any, actor: Actor) -> Release:
    """Merge the approved tasks' PRs, bring staging up to the default branch, record it."""
    ids = _clean_task_ids(task_ids)
    tasks = list(Task.objects.select_related("project").filter(pk__in=ids).order_by("id"))
    for project in {t.project for t in tasks}:  # per project: projects/roles.py
        if not actor.has_perm(roles.MERGE_TO_STAGING, project):
            raise errors.PermissionDenied(roles.denied_message(roles.MERGE_TO_STAGING, project))
    missing = sorted(set(ids) - {t.pk for t in tasks})
    if missing:
        raise errors.NotFound(f"Unknown tasks: {', '.join(map(str, missing))}.")
    projects = {t.project_id for t in tasks}
    if len(projects) > 1:
        raise errors.InvalidInput(
            "All tasks of a release belong to one project.", fields={"task_ids": ["Mixed."]}
        )
    not_approved = [f"#{t.pk} ({t.state})" for t in tasks if t.state != S.APPROVED]
    if not_approved:
        raise errors.Conflict(f"Only approved tasks go to staging: {', '.join(not_approved)}.")
    project = tasks[0].project
    forge = _forge_checked(project)
    _broadcast_step(
        project_id=project.pk,
        event="deploy.merging",
        environment=Environment.STAGING,
        task_ids=[t.pk for t in tasks],
        status="merging",
    )
    merged: list[Task] = []
    failures: list[str] = []
    for task in tasks:
        try:
            if not task.pr_number:
                raise errors.Conflict("the task has no pull request")
            task_forge.task_merge_pull_request(task_id=task.pk, actor=actor)
        except (
            errors.Conflict,
            errors.InvalidInput,
            errors.NotFound,
            errors.Unavailable,
        ) as exc:
            _fail_task(task, actor=actor, reason=exc.message)
            failures.append(f"#{task.pk}: {exc.message}")
            continue
        merged.append(task)
    if not merged:
        raise errors.Conflict("No task could be merged: " + "; ".join(failures))
    sha = _brought_up_to_date(
        forge,
        project=project,
        environment=Environment.STAGING,
        tasks=merged,
        head=project.default_branch,
        base=project.staging_branch,
        title=f"Release to staging: {', '.join(f'#{t.pk}' for t in merged)}",
    )
    with transaction.atomic():
        release = Release.objects.create(
            project=project,
            environment=Environment.STAGING,
            commit_sha=sha,
            image=_image(project, sha),
            created_by=actor.user,
            status=Release.Status.PENDING,
            error="; ".join(failures)[:5000],
        )
        release.tasks.set(merged)
        _queued(release, task_ids=[t.pk for t in merged])
    return release


def release_promote(*, release_id: Any, actor: Actor) -> Release:
    """Merge staging into production and record the production release of its tasks."""
    if isinstance(release_id, bool) or not isinstance(release_id, int):
        raise errors.InvalidInput("release_id must be an integer.", fields={"id": ["Integer."]})
    staging = Release.objects.select_related("project").filter(pk=release_id).first()
    if staging is None:
        raise errors.NotFound(f"Release {release_id} does not exist.")
    if not actor.has_perm(roles.PROMOTE, staging.project):
        raise errors.PermissionDenied(roles.denied_message(roles.PROMOTE, staging.project))
    if staging.environment != Environment.STAGING:
        raise errors.Conflict(f"Release {release_id} is a {staging.environment} release.")
    tasks = list(staging.tasks.filter(state=S.STAGING).order_by("id"))
    if not tasks:
        raise errors.Conflict(f"Release {release_id} has no task left in staging to promote.")
    project = staging.project
    forge = _forge_checked(project)
    _broadcast_step(
        project_id=project.pk,
        event="deploy.merging",
        environment=Environment.PRODUCTION,
        task_ids=[t.pk for t in tasks],
        status="merging",
        release_id=staging.pk,
    )
    sha = _brought_up_to_date(
        forge,
        project=project,
        environment=Environment.PRODUCTION,
        tasks=tasks,
        head=project.staging_branch,
        base=project.production_branch,
        title=f"Promote staging release {staging.pk} to production",
    )
    with transaction.atomic():
        release = Release.objects.create(
            project=project,
            environment=Environment.PRODUCTION,
            commit_sha=sha,
            image=staging.image or _image(project, sha),
            created_by=staging.created_by,
            approved_by=actor.user,
            status=Release.Status.PENDING,
        )
        release.tasks.set(tasks)
        _queued(release, task_ids=[t.pk for t in tasks])
    return release
