"""The site's URLs plus the bench's yardstick: a bare single-query view of the board's rows.

The bare view fetches exactly the rows the board's first page shows (each column's first
`PAGE_SIZE` tasks in claim order, the same ORDER BY and LIMIT per column, read through the same
`task_board_order` index) in one query: a UNION ALL of one `LIMIT` select per column carrying
id, title and state, written as SQL once. It writes one line of HTML per row: no badges, no
counts, no template, no permissions, no per-card work. It goes through the same middleware as
the board, and the bench checks that both show the same number of cards.
"""

from functools import cache

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from tasks.board_selectors import COLUMNS, PAGE_SIZE
from tasks.models import Task


@cache
def _sql(vendor: str) -> str:
    q = connection.ops.quote_name
    part = (
        f"SELECT * FROM (SELECT {q('id')}, {q('title')}, {q('state')}"
        f" FROM {q(Task._meta.db_table)} WHERE {q('project_id')} = %s AND {q('state')} = %s"
        f" ORDER BY {q('priority')} DESC, {q('position')}, {q('created_at')}, {q('id')}"
        " LIMIT %s) {alias}"
    )
    return " UNION ALL ".join(part.format(alias=f"c{i}") for i in range(len(COLUMNS)))


def bare_board(request: HttpRequest, project_id: int) -> HttpResponse:
    params: list[int | str] = []
    for state, _ in COLUMNS:
        params += [project_id, state, PAGE_SIZE]
    with connection.cursor() as cursor:
        cursor.execute(_sql(connection.vendor), params)
        rows = cursor.fetchall()
    html = "".join(f'<article id="task-{pk}">{t} {s}</article>' for pk, t, s in rows)
    return HttpResponse(html)


urlpatterns = [
    path("bench/bare/<int:project_id>/", bare_board, name="bench-bare"),
    path("", include("aiworker.urls")),
]
