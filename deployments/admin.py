from django.contrib import admin, messages

from aiworker import errors
from aiworker.actors import Actor
from deployments import services as deploy_services
from deployments.models import Deployment, Release
from projects import admin_actions


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "project",
        "environment",
        "task",
        "release",
        "driver",
        "namespace",
        "status",
        "url",
        "expires_at",
        "created_at",
    )
    list_filter = ("environment", "status", "driver", "project")
    search_fields = ("namespace", "url", "image", "commit_sha", "error")
    list_select_related = ("project", "task", "release")
    raw_id_fields = ("task", "release")
    readonly_fields = ("created_at", "updated_at")
    date_hierarchy = "created_at"
    actions = ["extend_ttl", "destroy_preview", "redeploy_preview"]

    @admin.action(description="Extend the TTL of selected previews by one PREVIEW_TTL")
    def extend_ttl(self, request, queryset):  # type: ignore[no-untyped-def]
        _run(
            self,
            request,
            queryset,
            lambda d, actor: deploy_services.preview_extend(deployment_id=d.pk, actor=actor),
        )

    @admin.action(description="Destroy selected previews")
    def destroy_preview(self, request, queryset):  # type: ignore[no-untyped-def]
        _run(
            self,
            request,
            queryset.exclude(task=None),
            lambda d, actor: deploy_services.preview_destroy(task_id=d.task_id, actor=actor),
        )

    @admin.action(description="Redeploy selected previews at their task's head commit")
    def redeploy_preview(self, request, queryset):  # type: ignore[no-untyped-def]
        _run(
            self,
            request,
            queryset.exclude(task=None),
            lambda d, actor: deploy_services.preview_deploy(task_id=d.task_id, actor=actor),
        )


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "project",
        "environment",
        "status",
        "commit_sha",
        "image",
        "created_by",
        "approved_by",
        "created_at",
        "deployed_at",
    )
    list_filter = ("environment", "status", "project")
    search_fields = ("commit_sha", "image", "error")
    list_select_related = ("project", "created_by", "approved_by")
    raw_id_fields = ("tasks", "rollback_of")
    readonly_fields = ("created_at",)
    date_hierarchy = "created_at"
    actions = ["rollback_release", admin_actions.promote_release]

    @admin.action(description="Roll back: redeploy the production release before this one")
    def rollback_release(self, request, queryset):  # type: ignore[no-untyped-def]
        _run(
            self,
            request,
            queryset,
            lambda r, actor: deploy_services.release_rollback(release_id=r.pk, actor=actor),
        )


def _run(model_admin, request, queryset, call):  # type: ignore[no-untyped-def]
    """Call a service per selected row; domain errors become admin messages."""
    actor = Actor.of_user(request.user)
    done = 0
    for obj in queryset:
        try:
            call(obj, actor)
            done += 1
        except errors.DomainError as exc:
            model_admin.message_user(request, f"{obj}: {exc.message}", level=messages.ERROR)
    if done:
        model_admin.message_user(request, f"Done for {done} of {len(queryset)}.")
