"""The board's reads built once per process (aiworker/sql_once.Prepared) return what the ORM's
querysets they were compiled from return, for other values than the ones they were built with:
the first pages' cards with every badge, the project, the column counts and the agents."""

import pytest
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent
from aiworker.sql_once import Prepared, Slot
from deployments.models import Deployment, Driver, Environment, Release
from tasks import board_selectors as selectors
from tasks.models import Task, TaskFeedback, TaskQuestion
from tests import factories

pytestmark = pytest.mark.django_db


def _busy_project():
    """A project whose cards show every badge, beside another project's tasks."""
    project = factories.make_project()
    factories.make_task(project=factories.make_project(), title="elsewhere")
    agent, _ = factories.make_agent()
    made = [
        factories.make_task(
            project=project,
            title=f"t{i} <&>",
            state=state,
            priority=i % 4,
            position=i,
            labels=",bug,ui," if i % 2 else "",
            assigned_agent=agent if state == "in_progress" else None,
            pr_url="https://forge.example/pr/1" if i == 3 else "",
            pr_number=7 if i == 3 else None,
        )
        for i, state in enumerate(["backlog", "in_progress", "in_progress", "approved", "staging"])
    ]
    TaskQuestion.objects.create(task=made[1], question="which?")
    TaskQuestion.objects.create(task=made[2], question="done", answered_at=timezone.now())
    TaskFeedback.objects.create(task=made[0], body="fix")
    made[0].depends_on.add(made[1])  # in progress: not met yet
    factories.make_task(project=project, parent=made[3], state="production")
    factories.make_task(project=project, parent=made[3], state="backlog")
    factories.make_task(project=project, parent=made[3], state="cancelled")
    Deployment.objects.create(
        project=project,
        task=made[2],
        environment=Environment.PREVIEW,
        driver=Driver.GITOPS,
        namespace="p",
        status="failed",
        error="x" * 400,
    )
    release = Release.objects.create(project=project, environment=Environment.STAGING)
    release.tasks.add(made[3])
    return project, agent


def test_the_first_pages_are_the_cards_the_orm_reads():
    project, _ = _busy_project()
    for per_column in (1, selectors.PAGE_SIZE):
        ids = selectors.first_page_ids(project_id=project.pk, per_column=per_column)
        orm = selectors.as_cards(
            selectors.board_cards(project_id=project.pk).filter(pk__in=ids).order_by()
        )
        orm.sort(key=selectors._claim_order)
        with CaptureQueriesContext(connection) as queries:
            cards = selectors.board_first_pages(project_id=project.pk, per_column=per_column)
        assert len(queries.captured_queries) == 1
        assert cards == orm
    # Every badge is there, with the types the ORM gives (booleans, aware datetimes).
    shown = {card.title: card for card in cards}
    assert shown["t1 <&>"].open_questions is True and shown["t2 <&>"].open_questions is False
    assert shown["t0 <&>"].unseen_feedback is True and shown["t0 <&>"].blocked is True
    assert (shown["t3 <&>"].subtasks_done, shown["t3 <&>"].subtasks_total) == (1, 2)
    assert shown["t2 <&>"].preview_status == "failed"
    assert shown["t2 <&>"].preview_error == "x" * selectors.PREVIEW_ERROR_SHOWN
    assert shown["t3 <&>"].release_unsettled is True
    assert all(card.created_at.tzinfo is not None for card in cards)
    assert selectors.board_first_pages(project_id=987654) == []


def test_the_project_counts_and_agents_are_what_the_orm_reads():
    project, agent = _busy_project()
    Release.objects.create(project=project, environment=Environment.STAGING)
    latest = Release.objects.create(project=project, environment=Environment.STAGING)
    found = selectors.project_for_board(slug=project.slug)
    orm = selectors._BOARD_PROJECTS.get(slug=project.slug)
    assert found is not None and found._state.adding is False
    fields = [f.attname for f in project._meta.concrete_fields]
    assert [getattr(found, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert found.staging_release_id == orm.staging_release_id == latest.pk  # type: ignore[attr-defined]
    assert selectors.project_for_board(slug="no-such-project") is None

    counts = {state: 0 for state, _ in selectors.COLUMNS}
    counts.update(
        Task.objects.filter(project=project).order_by().values_list("state").annotate(n=Count("pk"))
    )
    assert selectors.column_counts(project_id=project.pk) == counts

    Agent.objects.filter(pk=agent.pk).update(revoked_at=timezone.now())  # holds a card still
    factories.make_agent(name="free")
    factories.make_agent(name="elsewhere", project=factories.make_project())
    factories.make_agent(name="here", project=project)
    rows = (
        Agent.objects.annotate(
            has_card=Exists(Task.objects.filter(project=project, assigned_agent=OuterRef("pk")))
        )
        .filter(
            Q(has_card=True)
            | Q(revoked_at__isnull=True) & (Q(project__isnull=True) | Q(project=project))
        )
        .order_by("name")
    )
    agents = selectors.board_agents(project_id=project.pk)
    assert agents.filter_names == [a.name for a in rows if a.has_card] == [agent.name]
    assert agents.startable == [
        (a.pk, a.name) for a in rows if a.revoked_at is None and a.status != "offline"
    ]


def test_a_prepared_query_refuses_a_slot_it_cannot_find():
    slot = Slot("project_id")
    with pytest.raises(ValueError, match="project_id"):
        Prepared(Task.objects.filter(project_id=1).values_list("pk"), slot)
