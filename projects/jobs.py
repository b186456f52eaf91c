"""Celery jobs of the Gitea integration. Each takes ids, loads fresh state and calls a service;
running one twice has the effect of running it once. Gitea timeouts and 5xx answers are retried
with bounded exponential backoff; other domain errors are final and returned as text."""

from typing import Any

from celery import shared_task

from aiworker import errors
from aiworker.actors import Actor
from projects import services
from projects.forges import gitea_deliveries as deliveries
from projects.forges.gitea import GiteaUnavailable

RETRY: dict[str, Any] = {
    "autoretry_for": (GiteaUnavailable,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}
ACTOR = Actor.system("gitea job")


def _final(exc: errors.DomainError) -> str:
    return f"{exc.code}: {exc.message}"


@shared_task(name="projects.jobs.create_branch", **RETRY)
def create_branch(*, task_id: int, base: str | None = None) -> str:
    try:
        return services.task_create_branch(task_id=task_id, actor=ACTOR, base=base).branch_name
    except GiteaUnavailable:
        raise
    except errors.DomainError as exc:
        return _final(exc)


@shared_task(name="projects.jobs.open_pull_request", **RETRY)
def open_pull_request(*, task_id: int, title: str | None = None, body: str | None = None) -> str:
    try:
        task = services.task_open_pull_request(task_id=task_id, actor=ACTOR, title=title, body=body)
    except GiteaUnavailable:
        raise
    except errors.DomainError as exc:
        return _final(exc)
    return task.pr_url


@shared_task(name="projects.jobs.merge_pull_request", **RETRY)
def merge_pull_request(*, task_id: int) -> str:
    try:
        return services.task_merge_pull_request(task_id=task_id, actor=ACTOR).merge_commit_sha
    except GiteaUnavailable:
        raise
    except errors.DomainError as exc:
        return _final(exc)


@shared_task(name="projects.jobs.connect_project", **RETRY)
def connect_project(*, project_id: int) -> str:
    try:
        project = services.project_connect(project_id=project_id, actor=ACTOR)
    except GiteaUnavailable:
        raise
    except errors.DomainError as exc:
        return _final(exc)
    return f"hook {project.gitea_webhook_id}"


@shared_task(name="projects.jobs.reconcile_pull_request", **RETRY)
def reconcile_pull_request(*, task_id: int) -> str:
    try:
        return services.task_reconcile_pull_request(task_id=task_id, actor=ACTOR)
    except GiteaUnavailable:
        raise
    except errors.DomainError as exc:
        return _final(exc)


@shared_task(name="projects.jobs.reconcile_pull_requests")
def reconcile_pull_requests() -> int:
    """Beat: fan out one reconcile per watched PR, for webhooks that never arrived."""
    from django.conf import settings

    if not settings.GITEA_URL:
        return 0
    task_ids = services.tasks_to_reconcile()
    for task_id in task_ids:
        reconcile_pull_request.delay(task_id=task_id)
    return len(task_ids)


@shared_task(
    name="projects.jobs.process_webhook_delivery",
    autoretry_for=(Exception,),
    dont_autoretry_for=(errors.DomainError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def process_webhook_delivery(*, delivery_pk: int) -> str:
    return deliveries.delivery_process(delivery_pk=delivery_pk)
