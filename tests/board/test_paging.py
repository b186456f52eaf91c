"""A column's cards a page at a time: the first page of every column, then "show more" after
the column's last loaded card; both read the `task_board_order` index, never the whole column."""

import re

import pytest
from django.db import connection
from django.urls import reverse

from tasks import board_selectors as selectors
from tasks.board_selectors import PAGE_SIZE
from tasks.models import Task
from tasks.states import TaskState
from tests import factories

S = TaskState
pytestmark = pytest.mark.django_db


def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<article class="card[^"]*" id="task-(\d+)"', html)]


def _claim_order(tasks: list[Task]) -> list[int]:
    return [
        t.pk for t in sorted(tasks, key=lambda t: (-t.priority, t.position, t.created_at, t.pk))
    ]


def _bulk(project, n: int, state: str = S.BACKLOG, start: int = 0) -> list[Task]:
    return Task.objects.bulk_create(
        Task(project=project, title=f"bulk {i}", state=state, priority=i % 4, position=i)
        for i in range(start, start + n)
    )


def test_first_pages_are_each_columns_first_cards_in_claim_order(project):
    backlog = _bulk(project, PAGE_SIZE + 3)
    done = _bulk(project, PAGE_SIZE * 2, S.PRODUCTION)
    approved = _bulk(project, 4, S.APPROVED)
    _bulk(factories.make_project(), PAGE_SIZE, S.BACKLOG)  # another project's, never shown
    cards = selectors.board_first_pages(project_id=project.pk)
    by_state: dict[str, list[int]] = {}
    for card in cards:
        by_state.setdefault(card.state, []).append(card.pk)
    assert by_state == {
        S.BACKLOG: _claim_order(backlog)[:PAGE_SIZE],
        S.PRODUCTION: _claim_order(done)[:PAGE_SIZE],
        S.APPROVED: _claim_order(approved),
    }


def test_show_more_after_the_last_card_pages_the_whole_column_in_claim_order(
    member_client, project
):
    made = _bulk(project, PAGE_SIZE * 2 + 7)
    url = reverse("board-column-more", args=[project.slug, "backlog"])
    ids = _ids(member_client.get(reverse("board", args=[project.slug])).content.decode())
    while True:
        page = member_client.get(url, {"after": ids[-1], "offset": len(ids)})
        assert page.status_code == 200
        more = _ids(page.content.decode())
        if not more:
            break
        assert len(more) <= PAGE_SIZE
        ids += more
    assert ids == _claim_order(made)


def test_show_more_after_a_card_breaks_ties_as_the_claim_does(member_client, project):
    """Same priority, position and age: the id decides, across the page boundary too."""
    made = _bulk(project, PAGE_SIZE + 4)
    Task.objects.filter(project=project).update(
        priority=1, position=7, created_at=made[0].created_at
    )
    ids = sorted(t.pk for t in made)
    url = reverse("board-column-more", args=[project.slug, "backlog"])
    more = member_client.get(url, {"after": ids[PAGE_SIZE - 1], "offset": PAGE_SIZE})
    assert _ids(more.content.decode()) == ids[PAGE_SIZE:]


def test_show_more_after_a_card_is_not_shifted_by_cards_moved_in_above_it(member_client, project):
    """A page that follows the last loaded card neither repeats nor skips a card when others
    enter the column above that card meanwhile (an offset would repeat the last ones)."""
    made = _bulk(project, PAGE_SIZE + 5, start=100)
    order = _claim_order(made)
    last_loaded = order[PAGE_SIZE - 1]
    # Three urgent tasks arrive at the top of the column after the first page was drawn.
    Task.objects.bulk_create(
        Task(project=project, title=f"new {i}", priority=3, position=i) for i in range(3)
    )
    url = reverse("board-column-more", args=[project.slug, "backlog"])
    more = _ids(
        member_client.get(url, {"after": last_loaded, "offset": PAGE_SIZE}).content.decode()
    )
    assert more == order[PAGE_SIZE:]


def test_show_more_after_a_task_that_is_gone_counts_from_the_offset(member_client, project):
    made = _bulk(project, PAGE_SIZE + 5)
    order = _claim_order(made)
    url = reverse("board-column-more", args=[project.slug, "backlog"])
    gone = factories.make_task(project=project)
    gone_pk = gone.pk
    gone.delete()
    more = member_client.get(url, {"after": gone_pk, "offset": PAGE_SIZE})
    assert _ids(more.content.decode()) == order[PAGE_SIZE:]
    # Another project's task is no cursor here either.
    other = factories.make_task(project=factories.make_project())
    more = member_client.get(url, {"after": other.pk, "offset": PAGE_SIZE})
    assert _ids(more.content.decode()) == order[PAGE_SIZE:]


def test_show_more_after_a_card_of_another_column_pages_from_its_place(member_client, project):
    """The column's last card may have moved on before the click: its place still counts."""
    made = _bulk(project, PAGE_SIZE + 5)
    order = _claim_order(made)
    moved = Task.objects.get(pk=order[PAGE_SIZE - 1])
    Task.objects.filter(pk=moved.pk).update(state=S.CANCELLED)
    url = reverse("board-column-more", args=[project.slug, "backlog"])
    more = member_client.get(url, {"after": moved.pk, "offset": PAGE_SIZE - 1})
    assert _ids(more.content.decode()) == order[PAGE_SIZE:]


def test_show_more_cards_are_the_cards_of_the_board(member_client, project):
    """Show more renders with the board's CardRenderer: a card is the same markup either way."""
    made = _bulk(project, PAGE_SIZE + 1)
    last = _claim_order(made)[-1]
    Task.objects.filter(pk=last).update(pr_url="https://git.example/o/r/pulls/3", pr_number=3)
    fetched = member_client.get(
        reverse("board-column-more", args=[project.slug, "backlog"]), {"offset": PAGE_SIZE}
    ).content.decode()
    card_url = reverse("board-card", args=[project.slug, last])
    assert member_client.get(card_url).json()["html"] == fetched.strip()
    assert "PR #3" in fetched and 'class="move-to"' in fetched


@pytest.mark.parametrize("after", ["-1", "x", "", str(2**63)])
def test_show_more_refuses_a_bad_cursor_and_changes_nothing(member_client, project, after):
    url = reverse("board-column-more", args=[project.slug, "backlog"])
    response = member_client.get(url, {"after": after})
    assert response.status_code == 400
    assert b"after" in response.content


def test_show_more_needs_the_board_permission(client, user, project, settings):
    settings.PROJECT_DEFAULT_ROLE = ""  # no membership: no role in the project
    _bulk(project, PAGE_SIZE + 1)
    client.force_login(user)
    url = reverse("board-column-more", args=[project.slug, "backlog"])
    response = client.get(url, {"offset": PAGE_SIZE})
    assert response.status_code == 403
    assert b"<article" not in response.content


def test_first_pages_read_the_board_order_index(project):
    """The first pages cost the same however long the columns grow: each column's page is an
    index range read that stops at its LIMIT, with no sort; the plan says so on both databases."""
    _bulk(project, 30)
    raw = selectors.first_page_ids(project_id=project.pk)
    sql, params = raw.sql, raw.params
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert plan.count("USING COVERING INDEX task_board_order") == len(S)
            assert "TEMP B-TREE" not in plan  # no sort: the index is in claim order
        else:
            cursor.execute("EXPLAIN " + sql, params)
            rows = cursor.fetchall()
            reads = [row for row in rows if row[2] == "tasks_task"]
            assert len(reads) == len(S)
            assert all(row[5] == "task_board_order" for row in reads), reads  # the key used
            assert not any("filesort" in str(row[-1]) for row in rows)


def test_the_agent_filter_seeks_each_agents_cards_in_the_index(project):
    """Whether an agent has a card on the board is one seek of `task_project_agent`, not a read
    of the project's tasks per agent (which grew with the history and the fleet)."""
    from django.test.utils import CaptureQueriesContext

    agent, _ = factories.make_agent()
    factories.make_task(project=project, state=S.IN_PROGRESS, assigned_agent=agent)
    _bulk(project, 30, S.PRODUCTION)
    with CaptureQueriesContext(connection) as queries:
        assert selectors.board_agents(project_id=project.pk).filter_names == [agent.name]
    (sql,) = [q["sql"] for q in queries.captured_queries]  # the values already in the SQL
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "INDEX task_project_agent (project_id=? AND assigned_agent_id=?)" in plan
        else:
            cursor.execute("EXPLAIN " + sql)
            reads = [row for row in cursor.fetchall() if row[2] == "U0"]
            assert reads and {row[5] for row in reads} == {"task_project_agent"}, reads
