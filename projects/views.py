"""The projects page: every project with its count per column and its cumulative-flow chart."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from projects import roles
from projects.charts import cumulative_flow
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
