"""Every page a person keeps open, in Chromium at 1440x900 and at phone width (390x844): one
navigation header everywhere, the board's columns fitting without a horizontal scrollbar, the
agent console in the site's look, error pages in the site's look with DEBUG off, a favicon.
Screenshots land in test-artifacts/screenshots/ for a person to look at."""

import os
import re
import threading

import pytest
from django.test import RequestFactory
from django.views.defaults import server_error
from playwright.sync_api import Browser, expect

from aiworker.actors import Actor
from tasks import services
from tests import factories
from tests.board.live_server import start_daphne
from tests.browser import launched_chromium, signed_in_context

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SIZES = {"desktop": (1440, 900), "laptop": (1280, 800), "phone": (390, 844)}


@pytest.fixture(scope="module")
def live_url() -> str:
    url, _stop = start_daphne()
    return url


@pytest.fixture(scope="module")
def browser() -> Browser:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def screenshots(artifacts_dir) -> str:
    path = os.path.join(artifacts_dir, "screenshots")
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture
def signed_in(browser, live_url):
    contexts = []

    def make(user, size):
        context = signed_in_context(browser, live_url, user, viewport=SIZES[size])
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def busy_project(db):
    project = factories.make_project(wip_limits={"in_progress": 3})
    agent, _ = factories.make_agent(name="claude-1")
    long_title = "A very long title that goes on " + "and on " * 12
    for i, state in enumerate(
        [
            "backlog",
            "backlog",
            "in_progress",
            "ready_to_test",
            "approved",
            "staging",
            "production",
            "cancelled",
        ]
    ):
        factories.make_task(project=project, title=f"{long_title}{i}", state=state)
    task = factories.make_task(
        project=project, title="Waiting on a person", priority=3, labels=",ui,design,"
    )
    services.task_claim_next(agent=agent, project=project)
    services.question_ask(
        task_id=task.pk, agent=agent, question="Which colour?", options=["blue", "green"]
    )
    return project, task, agent


@pytest.mark.parametrize("size", list(SIZES))
def test_each_page_has_one_navigation_and_fits(signed_in, busy_project, screenshots, size):
    project, task, _ = busy_project
    staff = factories.make_user(is_staff=True, is_superuser=True)
    context = signed_in(staff, size)
    page = context.new_page()
    pages = {
        "board": f"/projects/{project.slug}/board/",
        "task": f"/projects/{project.slug}/tasks/{task.pk}/",
        "deployments": f"/projects/{project.slug}/deployments/",
        "agents": f"/agents/?project={project.slug}",
        "projects": "/",
    }
    for name, path in pages.items():
        page.goto(path)
        nav = page.get_by_role("navigation", name="Main")
        for label in ("Projects", "Board", "Deployments", "Charts", "Agents", "Admin"):
            if name == "projects" and label in ("Board", "Deployments", "Charts"):
                continue  # outside a project there is no board to link
            expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
        # Nothing overflows the window sideways: no horizontal scrollbar on any page.
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (name, size, overflow)
        page.screenshot(path=os.path.join(screenshots, f"{name}-{size}.png"), full_page=True)
    page.goto(pages["board"])
    expect(page.locator("#board-root")).to_have_attribute("data-live", "open")
    current = page.get_by_role("navigation", name="Main").get_by_role("link", name="Board")
    expect(current).to_have_attribute("aria-current", "page")
    if size != "phone":
        # All eight columns side by side, Cancelled included, none cut off.
        boxes = page.locator("section.column").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().right)"
        )
        assert len(boxes) == 8 and max(boxes) <= SIZES[size][0], boxes
    else:
        # Phone width: the columns stack, each as wide as the screen allows.
        lefts = page.locator("section.column").evaluate_all(
            "els => els.map(e => Math.round(e.getBoundingClientRect().left))"
        )
        assert len(set(lefts)) == 1, lefts


def test_the_agent_console_has_the_site_look_and_streams_progress(
    signed_in, busy_project, screenshots
):
    _, task, agent = busy_project
    staff = factories.make_user(is_staff=True, is_superuser=True)
    page = signed_in(staff, "desktop").new_page()
    page.goto("/agents/")  # every agent (this one belongs to no project)
    panel = page.locator(f"#agent-{agent.pk}")
    expect(panel).to_contain_text("claude-1")
    expect(page.locator("header.topbar")).to_be_visible()
    page.wait_for_timeout(1000)  # the console's sockets open (no event is replayed)
    # From another thread: Playwright's event loop runs in this one, where a broadcast cannot.
    logged = threading.Thread(
        target=services.task_log_progress,
        kwargs={"task_id": task.pk, "actor": Actor.of_agent(agent), "message": "Tests pass"},
    )
    logged.start()
    logged.join()
    expect(panel.locator("[data-role=progress]")).to_contain_text("Tests pass")
    page.screenshot(path=os.path.join(screenshots, "agents-console-desktop.png"), full_page=True)


def test_error_pages_are_in_the_site_look_with_debug_off(live_url, browser, settings):
    settings.DEBUG = False
    context = browser.new_context(base_url=live_url)
    page = context.new_page()
    response = page.goto("/no/such/page/")
    assert response is not None and response.status == 404
    expect(page.locator("header.topbar")).to_be_visible()
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert "Traceback" not in page.content() and "URLconf" not in page.content()
    icon = page.locator('link[rel="icon"]').get_attribute("href")
    assert icon and page.request.get(icon).status == 200
    context.close()

    answer = server_error(RequestFactory().get("/"))
    assert answer.status_code == 500
    text = answer.content.decode()
    assert 'class="topbar"' in text and "Something went wrong" in text


def test_the_timeline_filters_by_kind_and_pages_newest_first(signed_in, busy_project):
    project, task, agent = busy_project
    for n in range(3):
        services.task_log_progress(
            task_id=task.pk, actor=Actor.of_agent(agent), message=f"Step {n}"
        )
    staff = factories.make_user(is_staff=True, is_superuser=True)
    page = signed_in(staff, "desktop").new_page()
    page.goto(f"/projects/{project.slug}/tasks/{task.pk}/")
    timeline = page.locator("section.timeline ol")
    expect(timeline).to_contain_text("Which colour?")  # everything: questions too

    page.get_by_role("navigation", name="Timeline filters").get_by_role(
        "link", name="Progress"
    ).click()
    expect(timeline.locator("li")).to_have_count(3)
    expect(timeline.locator("li").first).to_contain_text("Step 2")  # newest first
    expect(timeline).not_to_contain_text("Which colour?")

    page.get_by_role("link", name="Questions").click()
    expect(timeline.locator("li")).to_have_count(1)
    expect(timeline).to_contain_text("Which colour?")
    page.goto(f"/projects/{project.slug}/tasks/{task.pk}/?show=nonsense")  # unknown: all
    expect(timeline).to_contain_text("Step 0")


@pytest.mark.parametrize("size", list(SIZES))
def test_the_charts_page_draws_flow_cycle_time_and_throughput(
    signed_in, busy_project, screenshots, size
):
    from datetime import timedelta

    from django.utils import timezone

    from tasks.models import TaskEvent

    project, _, _ = busy_project
    now = timezone.now()
    for hours in (5, 9, 30):
        done = factories.make_task(project=project, state="production")
        for to_state, at in (("in_progress", hours + 2), ("production", 2)):
            event = TaskEvent.objects.create(
                task=done, kind="status_changed", to_state=to_state, actor_kind="system"
            )
            TaskEvent.objects.filter(pk=event.pk).update(created_at=now - timedelta(hours=at))
    staff = factories.make_user(is_staff=True, is_superuser=True)
    page = signed_in(staff, size).new_page()
    page.goto(f"/projects/{project.slug}/board/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Charts").click()
    expect(page.locator("#flow polygon").first).to_be_attached()
    expect(page.locator("#cycle")).to_contain_text("Median")
    expect(page.locator("#cycle")).to_contain_text("9.0 h")
    rows = page.locator("#throughput tbody tr td:last-child")
    assert sum(int(t.strip() or 0) for t in rows.all_inner_texts()) == 3
    page.get_by_role("link", name="Last 30 days").click()
    expect(page.get_by_role("link", name="Last 30 days")).to_have_attribute("aria-current", "true")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, overflow
    page.screenshot(path=os.path.join(screenshots, f"charts-{size}.png"), full_page=True)


def test_dependencies_are_picked_on_the_task_page_and_drawn(signed_in, busy_project, screenshots):
    from tasks.models import Task

    project, _, _ = busy_project
    first = factories.make_task(project=project, title="Design the schema")
    second = factories.make_task(project=project, title="Write the migration")
    staff = factories.make_user(is_staff=True, is_superuser=True)
    page = signed_in(staff, "desktop").new_page()
    page.goto(f"/projects/{project.slug}/tasks/{second.pk}/")
    page.locator("summary", has_text="Edit dependencies").click()
    page.select_option("#depends-on", [str(first.pk)])
    page.get_by_role("button", name="Save dependencies").click()
    expect(page.locator(".messages")).to_contain_text("Dependencies saved")
    graph = page.get_by_test_id("dependency-graph")
    expect(graph.locator(f'a[data-task="{first.pk}"]')).to_be_attached()
    expect(graph.locator(f'a[data-task="{second.pk}"]')).to_be_attached()
    assert list(Task.objects.get(pk=second.pk).depends_on.values_list("pk", flat=True)) == [
        first.pk
    ]
    page.screenshot(path=os.path.join(screenshots, "task-dependencies-desktop.png"), full_page=True)

    # A cycle is refused with the reason, and nothing changes.
    page.goto(f"/projects/{project.slug}/tasks/{first.pk}/")
    page.locator("summary", has_text="Edit dependencies").click()
    page.select_option("#depends-on", [str(second.pk)])
    page.get_by_role("button", name="Save dependencies").click()
    expect(page.locator(".messages")).to_contain_text("cycle")
    assert not Task.objects.get(pk=first.pk).depends_on.exists()


def test_a_viewer_gets_no_picker_and_a_403_naming_the_role(db, settings, busy_project):
    from django.test import Client

    from projects.models import Membership

    settings.PROJECT_DEFAULT_ROLE = ""
    project, task, _ = busy_project
    other = factories.make_task(project=project, title="Other")
    viewer = factories.make_user()
    Membership.objects.create(user=viewer, project=project, role="viewer")
    client = Client()
    client.force_login(viewer)
    page = client.get(f"/projects/{project.slug}/tasks/{task.pk}/").content.decode()
    assert "Edit dependencies" not in page
    answer = client.post(
        f"/projects/{project.slug}/tasks/{task.pk}/dependencies/", {"depends_on": [other.pk]}
    )
    assert answer.status_code == 403 and b"member" in answer.content
    assert not task.depends_on.exists()
    bad = factories.make_user(is_superuser=True)
    client.force_login(bad)
    client.post(f"/projects/{project.slug}/tasks/{task.pk}/dependencies/", {"depends_on": ["x"]})
    assert not task.depends_on.exists()


def test_a_full_column_shows_count_over_limit_in_red(signed_in, db):
    project = factories.make_project(wip_limits={"in_progress": 2, "backlog": 5})
    for _ in range(2):
        factories.make_task(project=project, state="in_progress")
    factories.make_task(project=project)
    staff = factories.make_user(is_staff=True, is_superuser=True)
    page = signed_in(staff, "desktop").new_page()
    page.goto(f"/projects/{project.slug}/board/")
    full = page.locator('section.column[data-state="in_progress"]')
    expect(full.locator(".column-head")).to_contain_text("2 / 2")
    expect(full).to_have_class(re.compile(r"\bat-limit\b"))
    red = full.locator(".count").evaluate("e => getComputedStyle(e).color")
    calm = page.locator('section.column[data-state="backlog"] .count').evaluate(
        "e => getComputedStyle(e).color"
    )
    assert red != calm, (red, calm)
    expect(page.locator('section.column[data-state="backlog"]')).not_to_have_class(
        re.compile(r"\bat-limit\b")
    )


def test_the_board_filters_by_label_and_priority_and_new_labels_join_the_choices(signed_in, db):
    project = factories.make_project()
    bug = factories.make_task(project=project, title="Crash on save", labels=",bug,", priority=3)
    ui = factories.make_task(project=project, title="Button colour", labels=",ui,design,")
    plain = factories.make_task(project=project, title="No label", priority=3)
    staff = factories.make_user(is_staff=True, is_superuser=True)
    page = signed_in(staff, "desktop").new_page()
    page.goto(f"/projects/{project.slug}/board/")
    expect(page.locator("#board-root")).to_have_attribute("data-live", "open")
    expect(page.locator(f"#task-{ui.pk} .label-chip")).to_have_text(["ui", "design"])
    options = page.locator("#filter-label option")
    expect(options).to_have_text(["Any", "bug", "design", "ui"])

    page.select_option("#filter-label", "bug")
    expect(page.locator(f"#task-{bug.pk}")).to_be_visible()
    expect(page.locator(f"#task-{ui.pk}")).to_be_hidden()
    expect(page.locator(f"#task-{plain.pk}")).to_be_hidden()
    page.select_option("#filter-label", "")
    page.select_option("#filter-priority", "3")  # urgent: the bug and the unlabelled one
    expect(page.locator(f"#task-{plain.pk}")).to_be_visible()
    expect(page.locator(f"#task-{ui.pk}")).to_be_hidden()
    page.select_option("#filter-priority", "")

    # Labels given elsewhere (the API, an agent) reach the open board and its choices live.
    edit = threading.Thread(
        target=services.task_update,
        kwargs={"task_id": plain.pk, "actor": Actor.system("test"), "labels": ["backend"]},
    )
    edit.start()
    edit.join(timeout=30)
    expect(page.locator(f"#task-{plain.pk} .label-chip")).to_have_text(["backend"])
    expect(options).to_have_text(["Any", "backend", "bug", "design", "ui"])


@pytest.mark.parametrize("size", list(SIZES))
def test_the_login_page_has_the_site_look(browser, live_url, screenshots, size):
    width, height = SIZES[size]
    context = browser.new_context(base_url=live_url, viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto("/projects/none/board/")  # signed out: sent to the login page
    assert "/login/" in page.url
    expect(page.locator("header.topbar .brand")).to_have_text("AiWorker")
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)  # nothing to show yet
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    css = page.locator("body").evaluate("e => getComputedStyle(e).fontFamily")
    assert css.strip() != "serif"  # the site's stylesheet, not the browser's default
    page.screenshot(path=os.path.join(screenshots, f"login-{size}.png"), full_page=True)
    context.close()
