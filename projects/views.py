"""The projects page (every project with its count per column and its cumulative-flow chart)
and a project's charts page (flow over a chosen range, cycle time, weekly throughput)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from projects import roles
from projects.charts import RANGES, cumulative_flow, delivery
from projects.models import Project
from tasks.board_selectors import COLUMNS, projects_overview


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    # Only the projects this person may see (projects/roles.py).
    overview = projects_overview(roles.visible_projects(request.user))
    charts = cumulative_flow([row["project"].pk for row in overview])
    rows = [
        {
            **row,
            "columns": [(state, label, row["counts"][state]) for state, label in COLUMNS],
            "chart": charts[row["project"].pk],
        }
        for row in overview
    ]
    return render(request, "projects/list.html", {"rows": rows})


@login_required
def project_charts(request: HttpRequest, slug: str) -> HttpResponse:
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise Http404("No such project.")
    if not request.user.has_perm(roles.VIEW_BOARD, project):
        raise PermissionDenied(roles.denied_message(roles.VIEW_BOARD, project))
    try:
        days = int(request.GET.get("days", RANGES[0]))
    except ValueError:
        days = RANGES[0]
    days = days if days in RANGES else RANGES[0]  # a range the page offers, nothing else
    context = {
        "project": project,
        "days": days,
        "ranges": RANGES,
        "flow": cumulative_flow([project.pk], days=days)[project.pk],
        "delivery": delivery(project.pk, days=days),
        "has_tasks": project.tasks.exists(),
    }
    return render(request, "projects/charts.html", context)
