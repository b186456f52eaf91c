"""Board figures: live latency in a real browser, and render cost by size.

Runs on a throw-away test database (Django's test-database machinery), never the dev data.
"""

import os
import statistics
import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.bench.table import Row, ratio

BROWSER_RUNS = 20
SIZES = (200, 2_000, 10_000)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _browser_latency(user: Any, project: Any) -> list[Row]:
    from playwright.sync_api import sync_playwright

    from tasks.models import Task
    from tests.board.live_server import start_daphne

    tasks = [Task.objects.create(project=project, title=f"live {i}") for i in range(BROWSER_RUNS)]
    url, stop = start_daphne()
    client = Client()
    client.force_login(user)
    cookie = {
        "name": settings.SESSION_COOKIE_NAME,
        "url": url,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
    }
    samples: list[float] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ],
            )
            pages = []
            for _ in range(2):
                context = browser.new_context(base_url=url)
                context.add_cookies([cookie])  # type: ignore[list-item]
                page = context.new_page()
                page.goto(f"/projects/{project.slug}/board/")
                page.wait_for_selector('#board-root[data-live="open"]')
                pages.append(page)
            actor, watcher = pages
            token = next(c["value"] for c in actor.context.cookies() if c["name"] == "csrftoken")
            for task in tasks:
                start = time.perf_counter()
                answer = actor.request.post(
                    f"/projects/{project.slug}/tasks/{task.pk}/move/",
                    data={"to_state": "in_progress"},
                    headers={"X-CSRFToken": token},
                )
                assert answer.ok, answer.text()
                watcher.wait_for_selector(
                    f'.cards[data-state="in_progress"] #task-{task.pk}', timeout=10_000
                )
                samples.append((time.perf_counter() - start) * 1000)
            browser.close()
    finally:
        stop()
    median = statistics.median(samples)
    return [
        Row(
            f"transition (HTTP) → visible on a 2nd browser, {BROWSER_RUNS} runs",
            f"p50 {median:.0f} ms, p95 {_pct(samples, 0.95):.0f} ms",
            "1,000 ms (issue 3)",
            ratio(median, 1000),
            "p50 <= 1.00x: " + ("met" if median <= 1000 else "NOT met"),
        )
    ]


def _render_rows(user: Any) -> list[Row]:
    from django.test.utils import override_settings

    with override_settings(ROOT_URLCONF="tests.bench.bare_urls"):
        return _render_rows_inner(user)


def _render_rows_inner(user: Any) -> list[Row]:
    from projects.models import Project
    from tasks.models import Task
    from tasks.states import TaskState

    rows = []
    client = Client()
    client.force_login(user)
    states = TaskState.values
    # What every board request costs before its cards: session, user, permissions, project,
    # counts, agent filter and page. Timed beside the 2,000-task board, it shows what the 3x
    # target leaves for the cards' query and HTML.
    empty = Project.objects.create(name="Bench empty", slug="bench-empty")
    empty_url = reverse("board", args=[empty.slug])
    client.get(empty_url)
    for size in SIZES:
        project = Project.objects.create(name=f"Bench {size}", slug=f"bench-{size}")
        Task.objects.bulk_create(
            (
                Task(
                    project=project,
                    title=f"task {i}",
                    state=states[i % len(states)],
                    priority=i % 4,
                    position=i,
                )
                for i in range(size)
            ),
            batch_size=1000,
        )
        url = reverse("board", args=[project.slug])
        bare_url = reverse("bench-bare", args=[project.pk])
        client.get(url)
        client.get(bare_url)
        runs = 15 if size < 10_000 else 7  # medians of few runs swung ±15% on a busy machine
        ours, bare, fixed = [], [], []
        for _ in range(runs):
            # Interleaved, so both see the same machine load. The log is cleared because a full
            # one (9,000 entries under DEBUG) makes CaptureQueriesContext see nothing.
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as queries:
                start = time.perf_counter()
                response = client.get(url)
                ours.append(time.perf_counter() - start)
            assert response.status_code == 200
            # Read now: captured_queries slices the live log, which the next clear() empties.
            query_count = len(queries.captured_queries)
            start = time.perf_counter()
            plain = client.get(bare_url)
            bare.append(time.perf_counter() - start)
            assert plain.status_code == 200
            if size == 2_000:
                start = time.perf_counter()
                client.get(empty_url)
                fixed.append(time.perf_counter() - start)
        shown = response.content.decode().count('class="card prio-')
        assert shown == plain.content.decode().count("<article"), "bare view must match"
        mine, limit = statistics.median(ours), statistics.median(bare)
        rows.append(
            Row(
                f"board render, {size:,} tasks, {shown} cards shown ({query_count} queries)",
                f"{mine * 1000:.1f} ms",
                f"{limit * 1000:.1f} ms bare 1-query view, same rows",
                ratio(mine, limit),
                "<= 3.00x, <= 10 queries: "
                + ("met" if mine <= 3 * limit and query_count <= 10 else "NOT met"),
            )
        )
        if fixed:
            base = statistics.median(fixed)
            rows.append(
                Row(
                    "  of which fixed per-request work (the board of an empty project)",
                    f"{base * 1000:.1f} ms",
                    f"{limit * 1000:.1f} ms bare view of the 2,000 tasks",
                    ratio(base, limit),
                    f"info: 3x leaves {(3 * limit - base) * 1000:.1f} ms for {shown} cards, "
                    f"they take {(mine - base) * 1000:.1f}",
                )
            )
    return rows


def run() -> list[Row]:
    from projects.models import Project
    from tests import factories

    # No setup_test_environment(): its template instrumentation would triple render times.
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API holds a loop here
    try:
        user = factories.make_user(username="bench")
        project = Project.objects.create(name="Bench live", slug="bench-live")
        rows = _browser_latency(user, project)
        rows += _render_rows(user)
        return rows
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        connection.creation.destroy_test_db(old_name, verbosity=0)
