"""Celery jobs of the deployments app. Each takes ids, loads fresh state and calls a service;
running one twice does nothing more than running it once."""

from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from aiworker import errors
from aiworker.actors import Actor
from deployments import services


@shared_task(
    name="deployments.jobs.deploy_preview",
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)
def deploy_preview(*, task_id: int, commit_sha: str | None = None) -> str:
    try:
        deployment = services.preview_deploy(
            task_id=task_id, actor=Actor.system("deploy-job"), commit_sha=commit_sha
        )
    except (errors.NotFound, errors.Conflict, errors.InvalidInput, errors.NotConfigured) as exc:
        # The task moved on or was deleted meanwhile: nothing to retry.
        services.preview_queue_skipped(task_id=task_id, reason=exc.message)
        return f"skipped: {exc.message}"
    return deployment.status


@shared_task(
    name="deployments.jobs.destroy_preview",
    autoretry_for=(Exception,),
    dont_autoretry_for=(errors.DomainError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)
def destroy_preview(*, task_id: int) -> int:
    try:
        return services.preview_destroy(task_id=task_id, actor=Actor.system("destroy-job"))
    except (errors.NotFound, errors.NotConfigured):
        return 0


@shared_task(name="deployments.jobs.deploy_release")
def deploy_release(*, release_id: int) -> str:
    return services.release_deploy(release_id=release_id).status


@shared_task(name="deployments.jobs.expire_previews")
def expire_previews() -> int:
    return services.previews_expire()


@shared_task(name="deployments.jobs.garbage_collect_resources")
def garbage_collect_resources() -> int:
    return services.resources_garbage_collect()


@shared_task(name="deployments.jobs.reconcile_local_deployments")
def reconcile_local_deployments() -> tuple[int, int]:
    return services.local_deployments_reconcile()


@worker_ready.connect
def reconcile_after_restart(**_: Any) -> None:
    """A restarted worker settles the local environments at once, not at the next beat."""
    reconcile_local_deployments.delay()
