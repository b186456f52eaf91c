"""The agent console: each agent's status, live progress lines and, with pods, its log tail."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from agents import pods, selectors
from agents.models import Agent
from aiworker import errors
from projects.models import Project


@login_required
@require_GET
def console(request: HttpRequest) -> HttpResponse:
    project_slug = request.GET.get("project") or None
    agents = list(selectors.console_agents(project_slug=project_slug))
    lines = selectors.progress_lines(agent_ids=[a.pk for a in agents])
    projects = Project.objects.order_by("name")
    if project_slug:
        projects = projects.filter(slug=project_slug)
    return render(
        request,
        "agents/console.html",
        {
            "rows": [(agent, lines.get(agent.pk, [])) for agent in agents],
            "projects": list(projects.values("pk", "slug", "name")),
            "pods_enabled": pods.enabled(),
            "project_slug": project_slug or "",
        },
    )


@login_required
@require_GET
def pod_log(request: HttpRequest, agent_id: int) -> JsonResponse:
    """The tail of an agent pod's log (the runner relays the agent CLI's output there)."""
    agent = get_object_or_404(Agent, pk=agent_id)
    if not agent.pod_name:
        return JsonResponse({"error": f"Agent {agent.name} runs outside a pod."}, status=404)
    try:
        text = pods.pod_log_tail(pod=agent.pod_name)
    except errors.NotConfigured as exc:
        return JsonResponse({"error": exc.message}, status=503)
    except errors.DomainError as exc:
        return JsonResponse({"error": exc.message}, status=502)
    return JsonResponse({"pod": agent.pod_name, "log": text})
