from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from projects import admin_actions
from projects.models import (
    ApiToken,
    Membership,
    Project,
    PullRequest,
    PullRequestComment,
    WebhookDelivery,
)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """People's API tokens: never a value (only its hash is stored, and the hash is not shown
    either), only the prefix that recognises it. Owners make their own on /account/tokens/."""

    list_display = ("prefix", "name", "user", "scope", "created_at", "expires_at", "revoked_at")
    list_filter = ("scope", "revoked_at", "expires_at")
    search_fields = ("prefix", "name", "user__username")
    list_select_related = ("user",)
    exclude = ("key_hash",)
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a token is made by its owner, who alone sees it once

    @admin.action(description="Revoke the selected API tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        done = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        messages.success(request, f"Revoked {done} token(s).")


class MembershipInline(admin.TabularInline):
    """Who works on the project and in which role (projects/roles.py says what each grants)."""

    model = Membership
    extra = 1
    autocomplete_fields = ("user",)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "project", "role", "created_at")
    list_filter = ("role", "project")
    search_fields = ("user__username", "user__email", "project__slug", "project__name")
    list_select_related = ("user", "project")
    autocomplete_fields = ("user", "project")


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "forge",
        "deploy_driver",
        "gitea_owner",
        "gitea_repo",
        "default_branch",
        "max_concurrent_agents",
        "created_at",
    )
    list_filter = ("forge", "deploy_driver", "created_at")
    search_fields = ("name", "slug", "gitea_owner", "gitea_repo", "description")
    prepopulated_fields = {"slug": ("name",)}
    # The webhook secret signs Gitea deliveries; it is never rendered, not even to operators.
    exclude = ("webhook_secret",)
    readonly_fields = ("gitea_webhook_id", "created_at", "updated_at")
    actions = [admin_actions.connect_to_gitea]
    inlines = [MembershipInline]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """A log of what Gitea sent: viewable and filterable, never edited by hand."""

    list_display = ("delivery_id", "event", "project", "outcome", "received_at", "processed_at")
    list_filter = ("outcome", "event", "project")
    search_fields = ("delivery_id", "event_key", "event", "detail")
    list_select_related = ("project",)
    date_hierarchy = "received_at"

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class PullRequestCommentInline(admin.TabularInline):
    model = PullRequestComment
    extra = 0
    fields = ("created_at", "author", "kind", "body")
    readonly_fields = ("created_at", "author", "kind", "body")
    can_delete = False


@admin.register(PullRequest)
class PullRequestAdmin(admin.ModelAdmin):
    """The local forge's pull requests: the forge's services write them, people read them."""

    list_display = ("__str__", "title", "head_ref", "base_ref", "state", "created_at")
    list_filter = ("state", "project")
    search_fields = ("title", "head_ref", "body")
    list_select_related = ("project",)
    readonly_fields = (
        "project",
        "number",
        "head_ref",
        "base_ref",
        "head_sha",
        "base_sha",
        "merge_commit_sha",
        "state",
        "created_at",
        "updated_at",
        "merged_at",
    )
    inlines = [PullRequestCommentInline]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
