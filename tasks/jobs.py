"""Periodic and background jobs of the tasks app (Celery), with a task's Gitea jobs (its branch,
pull request, reconciling and webhook deliveries; retried as projects/jobs.py says)."""

from celery import shared_task
from django.conf import settings

from aiworker import errors
from projects.jobs import GITEA_ACTOR, GITEA_RETRY, gitea_outcome
from tasks import gitea_deliveries, services
from tasks.services import forge


@shared_task(name="tasks.jobs.release_expired_leases")
def release_expired_leases() -> int:
    return services.task_release_expired_leases()


# --- Gitea ------------------------------------------------------------------------------------


@shared_task(name="tasks.jobs.create_branch", **GITEA_RETRY)
def create_branch(*, task_id: int, base: str | None = None) -> str:
    task = gitea_outcome(
        lambda: forge.task_create_branch(task_id=task_id, actor=GITEA_ACTOR, base=base)
    )
    return task if isinstance(task, str) else task.branch_name


@shared_task(name="tasks.jobs.open_pull_request", **GITEA_RETRY)
def open_pull_request(*, task_id: int, title: str | None = None, body: str | None = None) -> str:
    task = gitea_outcome(
        lambda: forge.task_open_pull_request(
            task_id=task_id, actor=GITEA_ACTOR, title=title, body=body
        )
    )
    return task if isinstance(task, str) else task.pr_url


@shared_task(name="tasks.jobs.merge_pull_request", **GITEA_RETRY)
def merge_pull_request(*, task_id: int) -> str:
    pr = gitea_outcome(lambda: forge.task_merge_pull_request(task_id=task_id, actor=GITEA_ACTOR))
    return pr if isinstance(pr, str) else pr.merge_commit_sha


@shared_task(name="tasks.jobs.reconcile_pull_request", **GITEA_RETRY)
def reconcile_pull_request(*, task_id: int) -> str:
    return gitea_outcome(
        lambda: forge.task_reconcile_pull_request(task_id=task_id, actor=GITEA_ACTOR)
    )


@shared_task(name="tasks.jobs.reconcile_pull_requests")
def reconcile_pull_requests() -> int:
    """Beat: fan out one reconcile per watched PR, for webhooks that never arrived."""
    if not settings.GITEA_URL:
        return 0
    task_ids = forge.tasks_to_reconcile()
    for task_id in task_ids:
        reconcile_pull_request.delay(task_id=task_id)
    return len(task_ids)


@shared_task(
    name="tasks.jobs.process_webhook_delivery",
    autoretry_for=(Exception,),
    dont_autoretry_for=(errors.DomainError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def process_webhook_delivery(*, delivery_pk: int) -> str:
    return gitea_deliveries.delivery_process(delivery_pk=delivery_pk)
