"""Writes of the deployments app: previews, releases, TTL and garbage collection (SPEC §10).

A driver call talks to a cluster or a git remote and can take minutes, so it never runs inside
a transaction: each service records its intent and commits, calls the driver, then records
the outcome in a second short transaction. The row's status says where it stands meanwhile.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aiworker import errors
from aiworker.actors import Actor
from aiworker.jobs import start_job
from aiworker.live import broadcast_on_commit
from deployments import manifests as m
from deployments.drivers import DeployFailed, Driver, driver_for, get_driver
from deployments.drivers.base import Place
from deployments.drivers.disabled import MESSAGE as DISABLED_MESSAGE
from deployments.models import Deployment, Environment, Release
from deployments.models import Driver as DriverName
from projects import roles
from projects.models import Project
from tasks import services as task_services
from tasks.models import Task, TaskEvent
from tasks.services import record_event
from tasks.states import TaskState

logger = logging.getLogger(__name__)

ACTIVE = (
    Deployment.Status.PENDING,
    Deployment.Status.DEPLOYING,
    Deployment.Status.READY,
    Deployment.Status.FAILED,
)
# A preview makes sense while the task's change is under work or review.
PREVIEW_STATES = frozenset(
    {TaskState.IN_PROGRESS, TaskState.NEEDS_INPUT, TaskState.READY_TO_TEST, TaskState.APPROVED}
)
EXPIRE_CHUNK = 200


# --- previews ---------------------------------------------------------------------------------


def _preview_checks(*, task: Task, commit_sha: str | None, driver: Driver) -> str:
    """The sha to deploy, or a domain error saying what is missing (nothing written yet)."""
    sha = (commit_sha or task.head_sha or "").strip().lower()
    if commit_sha is not None and not m.SHA_RE.match(sha):
        raise errors.InvalidInput(
            "commit_sha must be 7 to 64 hexadecimal characters.",
            fields={"commit_sha": ["Not a git commit sha."]},
        )
    if not sha:
        raise errors.InvalidInput(
            f"Task {task.pk} has no head commit yet: push the branch or pass commit_sha.",
            fields={"commit_sha": ["Required while the task has no head commit."]},
        )
    if driver.needs_image and not task.project.image_repository:
        raise errors.InvalidInput(
            f"Project {task.project.slug} has no image repository to deploy previews from.",
            fields={"image_repository": ["Set it on the project first."]},
        )
    if task.state not in PREVIEW_STATES:
        raise errors.Conflict(
            f"Task {task.pk} is {task.state}; previews are deployed for tasks in "
            f"{', '.join(sorted(PREVIEW_STATES))}."
        )
    return sha


def preview_queue(*, task_id: int, actor: Actor, commit_sha: str | None = None) -> str:
    """Check a preview can be deployed, then start the deploy job; returns the preview URL
    ("" with the local driver, whose port is chosen when the preview starts)."""
    task = _get_task(task_id)
    _check_may_touch(actor=actor, task=task)
    driver = get_driver_checked(task.project)
    sha = _preview_checks(task=task, commit_sha=commit_sha, driver=driver)
    _record_queued(task=task, driver=driver, sha=sha, actor=actor)
    start_job("deployments.jobs.deploy_preview", task_id=task.pk, commit_sha=sha)
    return m.preview_url(task.pk) if driver.needs_image else ""


def _record_queued(*, task: Task, driver: Driver, sha: str, actor: Actor) -> None:
    """The first step a person sees: "preview queued" until the job starts (it may wait for a
    worker). A task with no preview, or a failed one, gets a `pending` row; a preview that is
    up keeps its row and its link, and the boards only hear `deploy.queued`."""
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_for_update()
            .filter(task=task, environment=Environment.PREVIEW, status__in=ACTIVE)
            .order_by("-id")
            .first()
        )
        if deployment is None:
            deployment = Deployment.objects.create(
                project=task.project,
                task=task,
                environment=Environment.PREVIEW,
                driver=driver.name,
                namespace=m.preview_namespace(task.pk),
                commit_sha=sha,
                status=Deployment.Status.PENDING,
                expires_at=timezone.now() + settings.PREVIEW_TTL_DURATION,
            )
        elif deployment.status == Deployment.Status.FAILED:
            deployment.status = Deployment.Status.PENDING
            deployment.save(update_fields=["status", "updated_at"])
        record_event(
            task=task,
            kind="deploy.queued",
            actor=actor,
            message=f"Preview deploy of {sha[:12]} queued.",
            payload={"deployment_id": deployment.pk, "sha": sha},
        )
        _broadcast(deployment, "deploy.queued", status=Deployment.Status.PENDING)


def preview_queue_skipped(*, task_id: int, reason: str) -> int:
    """The deploy job found nothing to do (the task moved on meanwhile): a preview still
    `pending` from `preview_queue` fails with the reason, so no card says "queued" for ever."""
    with transaction.atomic():
        pending = list(
            Deployment.objects.select_for_update().filter(
                task_id=task_id,
                environment=Environment.PREVIEW,
                status=Deployment.Status.PENDING,
            )
        )
        for deployment in pending:
            deployment.status = Deployment.Status.FAILED
            deployment.error = f"Not deployed: {reason}"[:5000]
            deployment.save(update_fields=["status", "error", "updated_at"])
            _broadcast(deployment, "deploy.failed")
    return len(pending)


def preview_deploy(*, task_id: int, actor: Actor, commit_sha: str | None = None) -> Deployment:
    """Create or update the task's preview and apply it; a driver failure marks it failed."""
    driver = get_driver_checked(_get_task(task_id).project)
    now = timezone.now()
    with transaction.atomic():
        task = _get_task(task_id, lock=True)
        _check_may_touch(actor=actor, task=task)
        sha = _preview_checks(task=task, commit_sha=commit_sha, driver=driver)
        deployment = (
            Deployment.objects.select_for_update()
            .filter(task=task, environment=Environment.PREVIEW, status__in=ACTIVE)
            .order_by("-id")
            .first()
        )
        if deployment is None:
            deployment = Deployment(
                project=task.project, task=task, environment=Environment.PREVIEW
            )
        image = m.image_at(task.project.image_repository, sha) if driver.needs_image else ""
        deployed_at, expires_at = now, now + settings.PREVIEW_TTL_DURATION
        same = deployment.image == image and deployment.commit_sha == sha
        if deployment.pk and same and deployment.expires_at:
            # The same image again (a retried job, a second click): render the same objects,
            # so the driver has nothing to change and gitops makes no commit.
            deployed_at = m.deployed_at_of(deployment.manifests) or now
            expires_at = deployment.expires_at
        elif deployment.expires_at and deployment.expires_at > expires_at:
            expires_at = deployment.expires_at  # a later expiry someone asked for stays
        # The local driver runs the commit itself: no manifests, and no URL until it answers.
        rendered = (
            m.render(
                m.preview_target(
                    task=task, image=image, deployed_at=deployed_at, expires_at=expires_at
                )
            )
            if driver.needs_image
            else []
        )
        deployment.driver = driver.name
        deployment.namespace = m.preview_namespace(task.pk)
        deployment.url = m.preview_url(task.pk) if driver.needs_image else ""
        deployment.image = image
        deployment.commit_sha = sha
        deployment.status = Deployment.Status.DEPLOYING
        deployment.expires_at = expires_at
        deployment.manifests = m.to_yaml(rendered)
        deployment.error = ""
        deployment.save()
        task.preview_url = deployment.url
        if sha != task.head_sha:
            task.head_sha = sha
        task.save(update_fields=["preview_url", "head_sha", "updated_at"])
        record_event(
            task=task,
            kind="deploy.started",
            actor=actor,
            message=f"Preview deploy of {image or sha[:12]} started.",
            payload={"deployment_id": deployment.pk, "url": deployment.url, "sha": sha},
        )
        _broadcast(deployment, "deploy.started")
    return _apply_and_record(deployment=deployment, rendered=rendered, actor=actor, driver=driver)


def _apply_with_driver(
    *, deployment: Deployment, rendered: list[dict[str, Any]], driver: Driver
) -> tuple[str, str]:
    """Apply through the driver: ("", URL the driver chose or "") on success, else (why it
    failed, ""). Never raises."""
    try:
        url = driver.apply(Place.of(deployment), rendered)
    except DeployFailed as exc:
        return exc.reason, ""
    except Exception as exc:
        logger.exception("deployment %s: driver %s crashed", deployment.pk, driver.name)
        return f"{type(exc).__name__}: {exc}", ""
    return "", url or ""


def _apply_and_record(
    *, deployment: Deployment, rendered: list[dict[str, Any]], actor: Actor, driver: Driver
) -> Deployment:
    error, url = _apply_with_driver(deployment=deployment, rendered=rendered, driver=driver)
    with transaction.atomic():
        # Conditional: a destroy that ran meanwhile wins over this late outcome.
        outcome = Deployment.Status.FAILED if error else Deployment.Status.READY
        changes: dict[str, Any] = {"url": url} if url else {}
        updated = Deployment.objects.filter(
            pk=deployment.pk, status=Deployment.Status.DEPLOYING
        ).update(status=outcome, error=error[:5000], updated_at=timezone.now(), **changes)
        deployment.refresh_from_db()
        if updated and url and deployment.task_id is not None:
            Task.objects.filter(pk=deployment.task_id).update(preview_url=url)
        if updated and deployment.task is not None:
            record_event(
                task=deployment.task,
                kind="deploy.failed" if error else "deploy.completed",
                actor=actor,
                message=f"Preview deploy failed: {error}"
                if error
                else f"Preview is ready at {deployment.url}.",
                payload={"deployment_id": deployment.pk, "url": deployment.url},
            )
        if updated:
            _broadcast(deployment, "deploy.failed" if error else "deploy.completed")
    return deployment


def preview_destroy(*, task_id: int, actor: Actor) -> int:
    """Remove the task's preview; returns how many deployments were destroyed (0: none)."""
    task = _get_task(task_id)
    driver = get_driver_checked(task.project)
    live = list(
        Deployment.objects.select_related("project").filter(
            task=task, environment=Environment.PREVIEW, status__in=ACTIVE
        )
    )
    if not live:
        return 0
    driver.destroy([Place.of(d) for d in live])
    with transaction.atomic():
        done = Deployment.objects.filter(pk__in=[d.pk for d in live], status__in=ACTIVE).update(
            status=Deployment.Status.DESTROYED, updated_at=timezone.now()
        )
        Task.objects.filter(pk=task.pk).update(preview_url="", updated_at=timezone.now())
        if done:
            record_event(
                task=task,
                kind="deploy.destroyed",
                actor=actor,
                message="Preview destroyed.",
                payload={"deployment_ids": [d.pk for d in live]},
            )
    return done


def preview_extend(
    *, deployment_id: int, actor: Actor, by: timedelta | None = None, hours: Any = None
) -> Deployment:
    """Push a preview's expiry later by `hours` (what people type) or `by` (default: one TTL,
    at most the cap) and re-apply its expiry label.

    Capped twice, both from settings: one extension is at most PREVIEW_EXTEND_MAX_HOURS, and a
    preview is extended at most PREVIEW_EXTEND_MAX_COUNT times (its deploy.extended events).
    Out of range is refused before anything is read or written.
    """
    cap = settings.PREVIEW_EXTEND_MAX_HOURS
    most = timedelta(hours=cap)
    out_of_range = errors.InvalidInput(
        f"An extension is from 1 to {cap} hours (PREVIEW_EXTEND_MAX_HOURS).",
        fields={"hours": [f"A whole number from 1 to {cap}."]},
    )
    if hours is not None:
        # Checked as a number before any timedelta is built: a huge one overflowed (a 500).
        if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= cap:
            raise out_of_range
        by = timedelta(hours=hours)
    by = min(settings.PREVIEW_TTL_DURATION, most) if by is None else by
    if not timedelta(0) < by <= most:
        raise out_of_range
    project = Project.objects.filter(deployments=deployment_id).first()
    driver = get_driver_checked(project)
    now = timezone.now()
    with transaction.atomic():
        try:
            deployment = (
                Deployment.objects.select_for_update()
                .select_related("project", "task__project")
                .get(pk=deployment_id)
            )
        except Deployment.DoesNotExist:
            raise errors.NotFound(f"Deployment {deployment_id} does not exist.") from None
        if deployment.environment != Environment.PREVIEW or deployment.status not in ACTIVE:
            raise errors.Conflict(
                f"Deployment {deployment_id} is a {deployment.status} {deployment.environment} "
                "deployment; only a live preview has a TTL to extend."
            )
        if deployment.task is None:
            raise errors.Conflict(f"Deployment {deployment_id} no longer has a task.")
        _check_may_touch(actor=actor, task=deployment.task)
        # Every extension of this preview counts (its deploy.extended events); a new commit
        # deployed still gets a fresh TTL, and a destroyed preview deployed again starts over.
        done = TaskEvent.objects.filter(
            task=deployment.task, kind="deploy.extended", payload__deployment_id=deployment.pk
        ).count()
        if done >= settings.PREVIEW_EXTEND_MAX_COUNT:
            raise errors.Conflict(
                f"Preview {deployment.pk} was already extended {done} times, the most "
                "PREVIEW_EXTEND_MAX_COUNT allows. Deploy a new commit for a fresh TTL, or "
                "destroy the preview and deploy it again."
            )
        deployment.expires_at = max(deployment.expires_at or now, now) + by
        # The local driver keeps the expiry in the database only: nothing to re-apply.
        rendered = (
            m.render(
                m.preview_target(
                    task=deployment.task,
                    image=deployment.image,
                    deployed_at=now,
                    expires_at=deployment.expires_at,
                )
            )
            if driver.needs_image
            else []
        )
        deployment.manifests = m.to_yaml(rendered) if rendered else ""
        deployment.save(update_fields=["expires_at", "manifests", "updated_at"])
        record_event(
            task=deployment.task,
            kind="deploy.extended",
            actor=actor,
            message=f"Preview kept until {deployment.expires_at:%Y-%m-%d %H:%M} UTC.",
            payload={
                "deployment_id": deployment.pk,
                "expires_at": deployment.expires_at.isoformat(),
            },
        )
    try:
        if rendered:
            driver.apply(Place.of(deployment), rendered)
    except DeployFailed as exc:
        # The new expiry is recorded; only the label in the cluster or repository lags.
        logger.warning("deployment %s: expiry label not re-applied: %s", deployment.pk, exc.reason)
    return deployment


def previews_expire(*, now: datetime | None = None) -> int:
    """Destroy every live preview past its expiry (beat); returns how many expired."""
    now = now or timezone.now()
    total = 0
    while True:
        chunk = list(
            Deployment.objects.select_related("project")
            .filter(environment=Environment.PREVIEW, status__in=ACTIVE, expires_at__lte=now)
            .order_by("expires_at", "id")[:EXPIRE_CHUNK]
        )
        if not chunk:
            return total
        for driver, deployments in _by_driver(chunk):
            if driver.name != "disabled":  # nothing of a disabled driver's runs anywhere
                driver.destroy([Place.of(d) for d in deployments])
        ids = [d.pk for d in chunk]
        with transaction.atomic():
            expired = list(
                Deployment.objects.select_for_update()
                .filter(pk__in=ids, status__in=ACTIVE)
                .values_list("pk", "task_id")
            )
            Deployment.objects.filter(pk__in=[pk for pk, _ in expired]).update(
                status=Deployment.Status.EXPIRED, updated_at=timezone.now()
            )
            task_ids = [t for _, t in expired if t]
            Task.objects.filter(pk__in=task_ids).update(preview_url="", updated_at=timezone.now())
            actor = Actor.system("preview-ttl")
            TaskEvent.objects.bulk_create(
                TaskEvent(
                    task_id=task_id,
                    kind="deploy.expired",
                    message="Preview expired and was removed.",
                    payload={"deployment_id": pk},
                    **actor.event_fields,
                )
                for pk, task_id in expired
                if task_id
            )
        total += len(expired)


def resources_garbage_collect(
    *, now: datetime | None = None, safety_window: timedelta | None = None
) -> int:
    """Remove labelled environments whose task or project is gone and that are older than the
    safety window (beat). An environment whose task still exists is never collected."""
    now = now or timezone.now()
    window = settings.DEPLOY_GC_SAFETY_WINDOW_DURATION if safety_window is None else safety_window
    return sum(
        _collect_orphans(driver, now=now, window=window)
        for driver in _drivers_in_use()
        if driver.name != "disabled"
    )


def _collect_orphans(driver: Driver, *, now: datetime, window: timedelta) -> int:
    found = driver.list_managed()
    project_ids = set(
        Project.objects.filter(pk__in={r.project_id for r in found if r.project_id}).values_list(
            "pk", flat=True
        )
    )
    task_ids = set(
        Task.objects.filter(pk__in={r.task_id for r in found if r.task_id}).values_list(
            "pk", flat=True
        )
    )
    orphans = []
    for resource in found:
        if resource.project_id is None:
            continue  # not ours to judge: a hand-made directory with our label but no ids
        if resource.deployed_at is None or resource.deployed_at > now - window:
            continue
        project_gone = resource.project_id not in project_ids
        task_gone = resource.environment == "preview" and (
            resource.task_id is None or resource.task_id not in task_ids
        )
        if project_gone or task_gone:
            orphans.append(resource)
    if orphans:
        driver.remove_managed(orphans)
        # Rows of a deleted task lost their task (SET_NULL) but still say they are live.
        Deployment.objects.filter(
            environment=Environment.PREVIEW,
            task__isnull=True,
            status__in=ACTIVE,
            namespace__in=[r.key.rsplit("/", 1)[-1] for r in orphans],
        ).update(status=Deployment.Status.DESTROYED, updated_at=timezone.now())
        logger.info("%s: collected %d orphaned environments", driver.name, len(orphans))
    return len(orphans)


def local_deployments_reconcile() -> tuple[int, int]:
    """After a restart (and each minute, beat): stop the local commands that no live record
    explains, and mark failed the live records whose command died. Returns (stopped, failed)."""
    from deployments.drivers.local import LocalDriver

    driver = LocalDriver.from_settings()
    live: dict[str, Deployment] = {}
    for d in Deployment.objects.select_related("project", "task").filter(
        driver=DriverName.LOCAL, status__in=ACTIVE
    ):  # newest first: an environment's earlier failed deploys do not hide its live one
        live.setdefault(d.namespace, d)
    unexplained = [r for r in driver.all_running() if r.key not in live]
    stopped = sum(1 for r in unexplained if driver.is_alive(r))
    driver.destroy([Place("", r.key, "") for r in unexplained])
    failed = 0
    for key, deployment in live.items():
        running = driver.running(key)
        if deployment.status != Deployment.Status.READY:
            continue  # a deploy in progress: its own call records the outcome
        if running is not None and driver.is_alive(running):
            continue
        reason = "The local command stopped. Its last output:\n" + (
            driver.last_output(key) or "(nothing)"
        )
        with transaction.atomic():
            updated = Deployment.objects.filter(
                pk=deployment.pk, status=Deployment.Status.READY
            ).update(status=Deployment.Status.FAILED, error=reason[:5000])
            if not updated:
                continue
            failed += 1
            deployment.refresh_from_db()
            if deployment.task is not None:
                Task.objects.filter(pk=deployment.task.pk, preview_url=deployment.url).update(
                    preview_url=""
                )
                record_event(
                    task=deployment.task,
                    kind="deploy.failed",
                    actor=Actor.system("local-reconcile"),
                    message=f"Preview failed: {reason}",
                    payload={"deployment_id": deployment.pk},
                )
            _broadcast(deployment, "deploy.failed")
    return stopped, failed


# --- releases ---------------------------------------------------------------------------------


def release_deploy(*, release_id: int) -> Release:
    """Deploy a release's image to its environment. Only when the driver reports success do
    its tasks move (approved -> staging, staging -> production; a rollback's release sends the
    rolled-back release's tasks production -> staging). A failure leaves every task where it was
    with a timeline line saying why. A release with no image, or the `disabled` driver, has
    nothing to deploy: that counts as success at once (docs/deployments.md); the local driver
    runs the release's commit itself and needs no image."""
    project = Project.objects.filter(releases=release_id).first()
    driver = driver_for(project) if project is not None else get_driver()
    now = timezone.now()
    with transaction.atomic():
        try:
            release = (
                Release.objects.select_for_update().select_related("project").get(pk=release_id)
            )
        except Release.DoesNotExist:
            raise errors.NotFound(f"Release {release_id} does not exist.") from None
        if release.status == Release.Status.LIVE:
            return release  # a retried job: already done
        deploys = driver.name != "disabled" and bool(
            release.image if driver.needs_image else release.commit_sha
        )
        rendered = (
            m.render(m.release_target(release=release, deployed_at=now))
            if driver.needs_image
            else []
        )
        deployment = Deployment.objects.create(
            project=release.project,
            release=release,
            environment=release.environment,
            driver=driver.name,
            namespace=m.release_namespace(release.project.slug, release.environment),
            url=release_url(release.project.slug, release.environment)
            if driver.needs_image
            else "",
            image=release.image,
            commit_sha=release.commit_sha,
            status=Deployment.Status.DEPLOYING,
            manifests=m.to_yaml(rendered) if release.image and rendered else "",
        )
        release.status = Release.Status.DEPLOYING
        release.error = ""
        release.save(update_fields=["status", "error"])
        _broadcast(deployment, "deploy.started")
    error = url = ""
    if deploys:
        error, url = _apply_with_driver(deployment=deployment, rendered=rendered, driver=driver)
    with transaction.atomic():
        release = Release.objects.select_for_update().get(pk=release.pk)
        deployment.status = Deployment.Status.FAILED if error else Deployment.Status.READY
        deployment.error = error[:5000]
        deployment.url = url or deployment.url
        deployment.save(update_fields=["status", "error", "url", "updated_at"])
        if error:
            release.status = Release.Status.FAILED
            release.error = error[:5000]
            release.save(update_fields=["status", "error"])
        else:
            _release_went_live(release=release, deployment=deployment)
        _record_deploy_outcome(release=release, deployment=deployment, error=error)
        _broadcast(deployment, "deploy.failed" if error else "deploy.completed")
    return release


def release_url(project_slug: str, environment: str) -> str:
    """STAGING_URL / PRODUCTION_URL when set; otherwise derived from PREVIEW_DOMAIN as
    https://<slug>-<environment>.<PREVIEW_DOMAIN>/ (shown on the deployments page)."""
    configured: dict[str, str] = {
        Environment.STAGING.value: settings.STAGING_URL,
        Environment.PRODUCTION.value: settings.PRODUCTION_URL,
    }
    return (
        configured.get(str(environment), "")
        or f"https://{m.release_host(project_slug, environment)}/"
    )


def _release_went_live(*, release: Release, deployment: Deployment) -> None:
    Release.objects.filter(
        project=release.project_id,
        environment=release.environment,
        status=Release.Status.LIVE,
    ).exclude(pk=release.pk).update(status=Release.Status.SUPERSEDED)
    Deployment.objects.filter(
        project=release.project_id,
        environment=release.environment,
        status=Deployment.Status.READY,
    ).exclude(pk=deployment.pk).update(status=Deployment.Status.DESTROYED)
    release.status = Release.Status.LIVE
    release.deployed_at = timezone.now()
    release.save(update_fields=["status", "deployed_at"])
    actor = Actor.system(f"release-{release.pk}")
    if release.rollback_of_id:
        undone = Release.objects.select_for_update().get(pk=release.rollback_of_id)
        undone.status = Release.Status.ROLLED_BACK
        undone.save(update_fields=["status"])
        keep = set(release.tasks.values_list("pk", flat=True))
        for task in undone.tasks.filter(state=TaskState.PRODUCTION).order_by("pk"):
            if task.pk not in keep:
                task_services.task_release_transition(
                    task_id=task.pk,
                    to_state=TaskState.STAGING,
                    release_id=release.pk,
                    actor=actor,
                    note=f"Production release {undone.pk} rolled back (release {release.pk} "
                    "redeployed the one before): back in staging.",
                )
        return
    source, target = (
        (TaskState.APPROVED, TaskState.STAGING)
        if release.environment == Environment.STAGING
        else (TaskState.STAGING, TaskState.PRODUCTION)
    )
    for task in release.tasks.filter(state=source).order_by("pk"):
        task_services.task_release_transition(
            task_id=task.pk,
            to_state=target,
            release_id=release.pk,
            actor=actor,
            note=f"{release.environment.title()} release {release.pk} is live "
            f"({release.image or 'nothing to deploy'}, {release.commit_sha[:12]}).",
        )


def _record_deploy_outcome(*, release: Release, deployment: Deployment, error: str) -> None:
    actor = Actor.system(f"release-{release.pk}")
    stays = "its tasks stay where they were" if error else ""
    TaskEvent.objects.bulk_create(
        TaskEvent(
            task_id=task_id,
            kind="deploy.failed" if error else "deploy.completed",
            message=(
                f"{release.environment.title()} release {release.pk} "
                + (f"failed, {stays}: {error}" if error else f"is live at {deployment.url}")
            ),
            payload={"release_id": release.pk, "deployment_id": deployment.pk},
            **actor.event_fields,
        )
        for task_id in release.tasks.values_list("pk", flat=True)
    )


def release_rollback_summary(*, release_id: Any, actor: Actor) -> dict[str, Any]:
    """What a rollback of `release_id` would send back: shown before the person confirms."""
    known = isinstance(release_id, int) and 0 < release_id < 2**63
    found = Release.objects.filter(pk=release_id) if known else Release.objects.none()
    project_id = found.values_list("project_id", flat=True).first()
    if project_id is not None and not actor.has_perm(roles.ROLLBACK, project_id):
        raise errors.PermissionDenied(roles.denied_message(roles.ROLLBACK))
    release = Release.objects.filter(pk=release_id).first()
    if release is None:
        raise errors.NotFound(f"Release {release_id} does not exist.")
    tasks = list(release.tasks.order_by("pk").values("id", "title", "state"))
    return {
        "release": release.pk,
        "environment": release.environment,
        "tasks": tasks,
        "message": f"Rolling back production release {release.pk} sends back to staging: "
        + (", ".join(f"#{t['id']} {t['title']}" for t in tasks) or "no task")
        + ".",
    }


def release_rollback(*, release_id: int, actor: Actor) -> Release:
    """Redeploy the production release before `release_id`; returns the new release. The
    rolled-back release's tasks return to staging once that deploy succeeded."""
    known = isinstance(release_id, int) and 0 < release_id < 2**63
    found = Release.objects.filter(pk=release_id) if known else Release.objects.none()
    project_id = found.values_list("project_id", flat=True).first()
    if project_id is not None and not actor.has_perm(roles.ROLLBACK, project_id):
        raise errors.PermissionDenied(roles.denied_message(roles.ROLLBACK))
    with transaction.atomic():
        try:
            current = Release.objects.select_for_update().get(pk=release_id)
        except Release.DoesNotExist:
            raise errors.NotFound(f"Release {release_id} does not exist.") from None
        if current.environment != Environment.PRODUCTION:
            raise errors.Conflict(f"Release {release_id} is not a production release.")
        # What the driver deploys must be there: an image, or for the local driver a commit.
        needed = "image" if driver_for(current.project).needs_image else "commit_sha"
        if current.status != Release.Status.LIVE:
            raise errors.Conflict(
                f"Release {release_id} is {current.status}; only the live one is rolled back."
            )
        previous = (
            Release.objects.filter(
                project=current.project_id,
                environment=Environment.PRODUCTION,
                pk__lt=current.pk,
                status__in=(Release.Status.SUPERSEDED, Release.Status.LIVE),
            )
            .exclude(**{needed: ""})
            .order_by("-pk")
            .first()
        )
        if previous is None:
            raise errors.Conflict(
                f"Release {release_id} has no earlier production release to roll back to."
            )
        user = actor.user if actor.kind == "user" else None
        restored = Release.objects.create(
            project_id=current.project_id,
            environment=Environment.PRODUCTION,
            commit_sha=previous.commit_sha,
            image=previous.image,
            rollback_of=current,
            created_by=user,
            approved_by=user,
            status=Release.Status.DEPLOYING,
        )
        restored.tasks.set(previous.tasks.all())
    return release_deploy(release_id=restored.pk)


# --- helpers ----------------------------------------------------------------------------------


def get_driver_checked(project: Project | None) -> Driver:
    """The project's driver; the disabled one answers NotConfigured before anything changes."""
    driver = driver_for(project) if project is not None else get_driver()
    if driver.name == "disabled":
        raise errors.NotConfigured(DISABLED_MESSAGE)
    return driver


def _by_driver(deployments: list[Deployment]) -> list[tuple[Driver, list[Deployment]]]:
    """`deployments` grouped by the driver of their project."""
    groups: dict[str, list[Deployment]] = {}
    for deployment in deployments:
        groups.setdefault(deployment.project.deploy_driver or settings.DEPLOY_DRIVER, []).append(
            deployment
        )
    return [(get_driver(name), group) for name, group in groups.items()]


def _drivers_in_use() -> list[Driver]:
    """The DEPLOY_DRIVER setting's driver and every other one a project chose."""
    chosen = set(Project.objects.exclude(deploy_driver="").values_list("deploy_driver", flat=True))
    names = sorted({settings.DEPLOY_DRIVER, *chosen})
    found = []
    for name in names:
        try:
            found.append(get_driver(name))
        except errors.NotConfigured as exc:
            logger.warning("deploy driver %s: %s", name, exc.message)
    return found


def _get_task(task_id: Any, *, lock: bool = False) -> Task:
    try:
        task_id = int(task_id)
    except (TypeError, ValueError):
        raise errors.InvalidInput(
            "task_id must be an integer.", fields={"task_id": ["Not an integer."]}
        ) from None
    qs = Task.objects.select_related("project")
    if lock:
        qs = qs.select_for_update()
    try:
        return qs.get(pk=task_id)
    except Task.DoesNotExist:
        raise errors.NotFound(f"Task {task_id} does not exist.") from None


def _check_may_touch(*, actor: Actor, task: Task) -> None:
    if actor.kind == "agent":
        assert actor.agent is not None
        if task.assigned_agent_id != actor.agent.pk:
            raise errors.PermissionDenied(
                f"Task {task.pk} is not assigned to agent {actor.agent.name}."
            )
    elif actor.kind == "user" and not actor.has_perm(roles.DEPLOY_PREVIEW, task.project_id):
        raise errors.PermissionDenied(roles.denied_message(roles.DEPLOY_PREVIEW, task.project))


def _broadcast(deployment: Deployment, event: str, *, status: str | None = None) -> None:
    # A release's deploy concerns its tasks' cards: the board redraws each (their badge).
    task_ids = (
        list(
            Release.tasks.through.objects.filter(release_id=deployment.release_id).values_list(
                "task_id", flat=True
            )
        )
        if deployment.release_id
        else []
    )
    broadcast_on_commit(
        project_id=deployment.project_id,
        event=event,
        data={
            "deployment_id": deployment.pk,
            "task_id": deployment.task_id,
            "task_ids": task_ids,
            "release_id": deployment.release_id,
            "environment": deployment.environment,
            "status": status or deployment.status,
            "url": deployment.url,
            "error": deployment.error,
        },
    )
