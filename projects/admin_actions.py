"""Admin actions of the Gitea integration, used by the admins of projects, tasks and releases.
They call the same services as the API; a refusal becomes an admin message."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from aiworker import errors
from aiworker.actors import Actor
from deployments import releases
from projects import services


@admin.action(description="Connect to Gitea (repository, branches, webhook)")
def connect_to_gitea(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> None:
    for project in queryset:
        try:
            services.project_connect(project_id=project.pk, actor=Actor.of_user(request.user))
        except errors.DomainError as exc:
            modeladmin.message_user(request, f"{project}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{project}: connected to Gitea.", messages.SUCCESS)


@admin.action(description="Merge selected approved tasks to staging")
def merge_to_staging(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> None:
    by_project: dict[int, list[int]] = {}
    for task_id, project_id in queryset.values_list("pk", "project_id"):
        by_project.setdefault(project_id, []).append(task_id)
    for task_ids in by_project.values():
        try:
            release = releases.release_merge_to_staging(
                task_ids=task_ids, actor=Actor.of_user(request.user)
            )
        except errors.DomainError as exc:
            modeladmin.message_user(request, exc.message, messages.ERROR)
            continue
        merged = release.tasks.count()
        level = messages.SUCCESS if merged == len(task_ids) else messages.WARNING
        text = f"Staging release {release.pk}: {merged} of {len(task_ids)} task(s) merged."
        if release.error:
            text += f" Not merged: {release.error}"
        modeladmin.message_user(request, text, level)


@admin.action(description="Promote selected staging releases to production")
def promote_release(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> None:
    for release in queryset.order_by("created_at"):
        try:
            promoted = releases.release_promote(
                release_id=release.pk, actor=Actor.of_user(request.user)
            )
        except errors.DomainError as exc:
            modeladmin.message_user(request, f"Release {release.pk}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(
                request, f"Production release {promoted.pk} created.", messages.SUCCESS
            )
