"""Reads of the deployments app: querysets with what their pages and APIs need joined in."""

from __future__ import annotations

from django.db.models import QuerySet

from deployments.models import Deployment, Release


def deployment_list(
    *,
    project_id: int | None = None,
    environment: str | None = None,
    status: str | None = None,
    task_id: int | None = None,
) -> QuerySet[Deployment]:
    qs = Deployment.objects.select_related("project", "task", "release")
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    if environment:
        qs = qs.filter(environment=environment)
    if status:
        qs = qs.filter(status=status)
    if task_id is not None:
        qs = qs.filter(task_id=task_id)
    return qs.order_by("-created_at", "-id")


def release_list(
    *, project_id: int | None = None, environment: str | None = None
) -> QuerySet[Release]:
    qs = Release.objects.select_related("project", "created_by", "approved_by").prefetch_related(
        "tasks"
    )
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    if environment:
        qs = qs.filter(environment=environment)
    return qs.order_by("-created_at", "-id")


def live_deployments(*, project_id: int) -> dict[str, Deployment | None]:
    """The newest deployment of each environment of a project (its current state)."""
    current: dict[str, Deployment | None] = {"preview": None, "staging": None, "production": None}
    for env in ("staging", "production"):
        current[env] = deployment_list(project_id=project_id, environment=env).first()
    return current
