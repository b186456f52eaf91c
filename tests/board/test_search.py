"""The board's search runs in the database: it finds cards beyond the pages loaded, pages its
matches with "show more", and refuses a bad filter with a 400 that says why."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tasks.board_selectors import PAGE_SIZE
from tasks.models import Task
from tasks.states import TaskState
from tests import factories
from tests.board.live_server import start_daphne
from tests.browser import launched_chromium, signed_in_context

S = TaskState


def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<article class="card[^"]*" id="task-(\d+)"', html)]


def _backlog(project, n: int, **fields) -> list[Task]:
    return Task.objects.bulk_create(
        Task(project=project, title=f"bulk {i}", state=S.BACKLOG, position=i, **fields)
        for i in range(n)
    )


def _columns(client, project, **query) -> str:
    response = client.get(reverse("board", args=[project.slug]), {"fragment": "columns", **query})
    assert response.status_code == 200, response.content
    return response.content.decode()


@pytest.mark.django_db
def test_the_search_finds_a_card_beyond_the_first_page(member_client, project):
    _backlog(project, PAGE_SIZE + 10)
    needle = factories.make_task(project=project, title="Find the needle", position=10_000)
    assert needle.pk not in _ids(_columns(member_client, project))  # not on the first page

    html = _columns(member_client, project, q="NEEDLE")
    assert _ids(html) == [needle.pk]
    assert "(1 match)" in html
    assert f">{PAGE_SIZE + 11}<" in html  # the header still counts the whole column
    assert _ids(_columns(member_client, project, q=f"#{needle.pk}")) == [needle.pk]


@pytest.mark.django_db
def test_agent_priority_and_label_filters_combine(member_client, project):
    agent, _ = factories.make_agent(name="claude-9")
    held = factories.make_task(
        project=project, state=S.IN_PROGRESS, assigned_agent=agent, labels=",ui,", priority=3
    )
    free = factories.make_task(project=project, labels=",ui,", priority=3)
    other = factories.make_task(project=project, labels=",backend,", priority=0)

    assert _ids(_columns(member_client, project, agent="claude-9")) == [held.pk]
    assert sorted(_ids(_columns(member_client, project, agent="-"))) == sorted([free.pk, other.pk])
    assert sorted(_ids(_columns(member_client, project, label="UI"))) == sorted([held.pk, free.pk])
    assert _ids(_columns(member_client, project, label="ui", agent="-", priority=3)) == [free.pk]
    assert _ids(_columns(member_client, project, priority=0)) == [other.pk]


@pytest.mark.django_db
def test_show_more_pages_the_matches_only(member_client, project):
    _backlog(project, PAGE_SIZE * 2 + 5, labels=",x,")
    _backlog(project, 30)
    url = reverse("board-column-more", args=[project.slug, "backlog"])
    ids = _ids(_columns(member_client, project, label="x"))
    assert len(ids) == PAGE_SIZE
    while True:
        page = member_client.get(url, {"after": ids[-1], "offset": len(ids), "label": "x"})
        more = _ids(page.content.decode())
        if not more:
            break
        ids += more
    assert len(ids) == len(set(ids)) == PAGE_SIZE * 2 + 5
    assert set(Task.objects.filter(pk__in=ids).values_list("labels", flat=True)) == {",x,"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [{"priority": "9"}, {"priority": "high"}, {"label": "a,b"}, {"q": "x" * 300}],
)
def test_a_bad_filter_is_a_400_saying_why(member_client, project, query):
    board = member_client.get(reverse("board", args=[project.slug]), query)
    more = member_client.get(reverse("board-column-more", args=[project.slug, "backlog"]), query)
    for response in (board, more):
        assert response.status_code == 400
        assert response.content.decode().startswith("Bad board filter: ")
        assert next(iter(query)) in response.content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_typing_in_the_search_box_finds_a_card_no_page_had_loaded():
    project = factories.make_project()
    _backlog(project, PAGE_SIZE + 5)
    needle = factories.make_task(
        project=project, title="Find the needle", position=10_000, labels=",rare,"
    )
    url, _ = start_daphne()
    with launched_chromium() as browser:
        context = signed_in_context(browser, url, factories.make_user(is_superuser=True))
        page = context.new_page()
        page.goto(f"/projects/{project.slug}/board/")
        root = page.locator("#board-root")
        expect(root).to_have_attribute("data-live", "open")
        card = page.locator(f"#task-{needle.pk}")
        expect(card).to_have_count(0)

        page.fill("#filter-text", "needle")
        expect(card).to_be_visible()
        backlog = page.locator('section.column[data-state="backlog"]')
        expect(backlog.locator(".matches")).to_have_text("(1 match)")
        expect(backlog.locator(".show-more")).to_be_hidden()
        # The label it carries joins the label choices; the search box cleared brings the
        # board back, and the label alone finds it again.
        page.fill("#filter-text", "")
        expect(backlog.locator(".matches")).to_have_count(0)
        expect(card).to_have_count(0)
        page.select_option("#filter-label", "rare")
        expect(card).to_be_visible()
        expect(backlog.locator(".cards > .card:visible")).to_have_count(1)
        context.close()
