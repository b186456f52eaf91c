"""The site's URLs plus the bench's yardstick: a bare single-query view of the board's rows.

The bare view fetches exactly the rows the board shows (each column's first page, in claim
order, one query with the same window function) and writes one line of HTML per row: no
badges, no template, no per-card work. It goes through the same middleware as the board.
"""

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from tasks.board_selectors import PAGE_SIZE
from tasks.models import Task


def bare_board(request: HttpRequest, project_id: int) -> HttpResponse:
    rows = (
        Task.objects.filter(project_id=project_id)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("state")],
                order_by=[F("priority").desc(), F("position"), F("created_at"), F("id")],
            )
        )
        .filter(rank__lte=PAGE_SIZE)
        .values_list("pk", "title", "state")
    )
    html = "".join(f'<article id="task-{pk}">{t} {s}</article>' for pk, t, s in rows)
    return HttpResponse(html)


urlpatterns = [
    path("bench/bare/<int:project_id>/", bare_board, name="bench-bare"),
    path("", include("aiworker.urls")),
]
