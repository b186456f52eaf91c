"""Celery jobs of the Gitea integration: connecting a project here, a task's branch, pull
request and webhook deliveries in tasks/jobs.py. Each takes ids, loads fresh state and calls a
service; running one twice has the effect of running it once. Gitea timeouts and 5xx answers
are retried with bounded exponential backoff; other domain errors are final and returned as
text."""

from collections.abc import Callable
from typing import Any, TypeVar

from celery import shared_task

from aiworker import errors
from aiworker.actors import Actor
from projects import services
from projects.forges.gitea import GiteaUnavailable

T = TypeVar("T")
GITEA_RETRY: dict[str, Any] = {
    "autoretry_for": (GiteaUnavailable,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}
GITEA_ACTOR = Actor.system("gitea job")


def gitea_outcome(call: Callable[[], T]) -> T | str:
    """The service's result; Gitea unavailable is raised (retried), other errors are final."""
    try:
        return call()
    except GiteaUnavailable:
        raise
    except errors.DomainError as exc:
        return f"{exc.code}: {exc.message}"


@shared_task(name="projects.jobs.connect_project", **GITEA_RETRY)
def connect_project(*, project_id: int) -> str:
    project = gitea_outcome(
        lambda: services.project_connect(project_id=project_id, actor=GITEA_ACTOR)
    )
    return project if isinstance(project, str) else f"hook {project.gitea_webhook_id}"
