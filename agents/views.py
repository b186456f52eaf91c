"""The agent console: each agent's status, live progress lines and, with pods, its log tail.

Both ask the roles (projects/roles.py): the console lists the agents of the projects the person
sees (and the project-less ones, which serve every project), as /api/agents/ does; a pod's log
needs VIEW_AGENT_LOG (role member) in the agent's project, or for a project-less agent, whose
log spans projects, the global agents.view_agent permission.
"""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from agents import pods, selectors
from agents.models import Agent
from aiworker import errors
from projects import roles


def may_read_log(user: Any, agent: Agent) -> bool:
    if agent.project_id is None:
        return bool(user.has_perm("agents.view_agent"))
    return bool(user.has_perm(roles.VIEW_AGENT_LOG, agent.project_id))


def _log_denied(agent: Agent) -> str:
    if agent.project_id is None:
        return (
            f"Agent {agent.name} serves every project: its pod log needs the permission "
            "agents.view_agent (an operator grants it)."
        )
    return roles.denied_message(roles.VIEW_AGENT_LOG, agent.project)


@login_required
@require_GET
def console(request: HttpRequest) -> HttpResponse:
    project_slug = request.GET.get("project") or None
    visible = roles.visible_projects(request.user)
    agents = list(
        selectors.console_agents(project_slug=project_slug).filter(
            Q(project__isnull=True) | Q(project__in=visible.values("pk"))
        )
    )
    lines = selectors.progress_lines(agent_ids=[a.pk for a in agents])
    projects = visible.order_by("name")
    if project_slug:
        projects = projects.filter(slug=project_slug)
    return render(
        request,
        "agents/console.html",
        {
            "rows": [
                (agent, lines.get(agent.pk, []), may_read_log(request.user, agent))
                for agent in agents
            ],
            "projects": list(projects.values("pk", "slug", "name")),
            "pods_enabled": pods.enabled(),
            "project_slug": project_slug or "",
        },
    )


@login_required
@require_GET
def pod_log(request: HttpRequest, agent_id: int) -> JsonResponse:
    """The tail of an agent pod's log (the runner relays the agent CLI's output there)."""
    agent = Agent.objects.select_related("project").filter(pk=agent_id).first()
    visible = roles.visible_projects(request.user)
    if agent is None or (
        agent.project_id is not None and not visible.filter(pk=agent.project_id).exists()
    ):
        # An agent of a project the person cannot see is not there for them, as in the API.
        return JsonResponse({"error": f"Agent {agent_id} does not exist."}, status=404)
    if not agent.pod_name:
        return JsonResponse({"error": f"Agent {agent.name} runs outside a pod."}, status=404)
    if not may_read_log(request.user, agent):
        return JsonResponse({"error": _log_denied(agent)}, status=403)
    try:
        text = pods.pod_log_tail(pod=agent.pod_name)
    except errors.NotConfigured as exc:
        return JsonResponse({"error": exc.message}, status=503)
    except errors.DomainError as exc:
        return JsonResponse({"error": exc.message}, status=502)
    return JsonResponse({"pod": agent.pod_name, "log": text})
