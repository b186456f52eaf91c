from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from agents import services
from agents.models import Agent
from aiworker import errors


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "kind",
        "status",
        "project",
        "current_task",
        "last_heartbeat_at",
        "token_prefix",
        "revoked_at",
        "can_plan",
    )
    list_filter = ("status", "kind", "can_plan", "project")
    search_fields = ("name", "pod_name", "pod_namespace", "status_message", "token_prefix")
    list_select_related = ("project", "current_task")
    # Only the hash is stored; it is useless to show and its absence keeps it out of every page.
    exclude = ("token_hash",)
    readonly_fields = (
        "token_prefix",
        "revoked_at",
        "current_task",
        "last_heartbeat_at",
        "created_at",
    )
    actions = ("revoke_tokens", "rotate_tokens", "delete_pods")

    def get_fields(self, request: HttpRequest, obj: Agent | None = None) -> Any:
        fields = super().get_fields(request, obj)
        if obj is None:
            # Created agents get their status from their own heartbeats.
            fields = [f for f in fields if f not in self.readonly_fields and f != "status"]
        return fields

    def save_model(self, request: HttpRequest, obj: Agent, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        agent, token = services.agent_create(
            name=obj.name,
            kind=obj.kind,
            project=obj.project,
            can_plan=obj.can_plan,
            capabilities=obj.capabilities or [],
        )
        # The admin goes on with `obj` (log entry, redirect): make it the created row.
        for field in Agent._meta.concrete_fields:
            setattr(obj, field.attname, getattr(agent, field.attname))
        obj._state.adding = False
        obj._state.db = agent._state.db
        # Kept on this request only, for response_add: a message would carry it in a cookie.
        request._new_agent_token = token  # type: ignore[attr-defined]

    def response_add(self, request: HttpRequest, obj: Agent, post_url_continue: Any = None) -> Any:
        token = getattr(request, "_new_agent_token", None)
        if token is None:
            return super().response_add(request, obj, post_url_continue)
        return _tokens_page(request, f"Agent {obj.name} created", [(obj, token)])

    @admin.action(description="Revoke the token of selected agents")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        names = []
        for agent in queryset:
            services.agent_revoke(agent_id=agent.pk)
            names.append(agent.name)
        messages.success(request, f"Revoked: {', '.join(names)}.")

    @admin.action(description="Delete the pods of selected agents (their tasks go back)")
    def delete_pods(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        from agents import lifecycle
        from aiworker.actors import Actor

        for agent in queryset:
            try:
                lifecycle.agent_pod_delete(agent_id=agent.pk, actor=Actor.of_user(request.user))
            except errors.DomainError as exc:
                messages.error(request, f"{agent.name}: {exc.message}")
                continue
            messages.success(request, f"Pod of {agent.name} deleted.")

    @admin.action(description="Rotate the token of selected agents (shows the new tokens once)")
    def rotate_tokens(self, request: HttpRequest, queryset: QuerySet[Agent]) -> HttpResponse:
        rotated, failures = [], []
        for agent in queryset:
            try:
                rotated.append((agent, services.agent_rotate_token(agent_id=agent.pk)))
            except errors.DomainError as exc:
                failures.append(f"{agent.name}: {exc.message}")
        return _tokens_page(request, "New agent tokens", rotated, failures)


def _tokens_page(
    request: HttpRequest,
    heading: str,
    tokens: list[tuple[Agent, str]],
    failures: list[str] | None = None,
) -> TemplateResponse:
    """New agent tokens, in this answer only: not in a message (Django keeps messages in a
    signed cookie, readable by anyone who holds it), not in a log, not cached by the browser."""
    response = TemplateResponse(
        request,
        "admin/agents/agent/tokens_once.html",
        {
            **admin.site.each_context(request),
            "title": heading,
            "heading": heading,
            "tokens": tokens,
            "failures": failures or [],
        },
    )
    add_never_cache_headers(response)
    return response
