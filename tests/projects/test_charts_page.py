"""The charts page: cumulative flow over a chosen range, cycle time (median, 85th percentile)
and weekly throughput from the task events, and "not enough history" instead of empty frames."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from projects.charts import delivery, percentile
from tasks.models import TaskEvent
from tests import factories


def move(task, to_state, at):
    event = TaskEvent.objects.create(
        task=task, kind="status_changed", to_state=to_state, actor_kind="system"
    )
    TaskEvent.objects.filter(pk=event.pk).update(created_at=at)  # auto_now_add ignores it


@pytest.fixture
def delivered(db):
    """Four tasks through production 10, 20, 30 and 40 hours after they started, this week."""
    project = factories.make_project()
    now = timezone.now()
    for hours in (10, 20, 30, 40):
        task = factories.make_task(project=project, state="production")
        move(task, "in_progress", now - timedelta(hours=hours + 1))
        move(task, "production", now - timedelta(hours=1))
    return project


def test_cycle_time_and_throughput_from_the_events(delivered):
    figures = delivery(delivered.pk, days=14)
    assert figures.finished == 4
    assert figures.cycle_median_hours == pytest.approx(20, abs=0.01)  # nearest rank of 4
    assert figures.cycle_p85_hours == pytest.approx(40, abs=0.01)
    assert sum(n for _, n in figures.weeks) == 4 and len(figures.weeks) in (2, 3)
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.85) == 9


def test_too_little_history_says_so(db):
    project = factories.make_project()
    factories.make_task(project=project)
    user = factories.make_user(is_superuser=True)
    client = Client()
    client.force_login(user)
    page = client.get(f"/projects/{project.slug}/charts/").content.decode()
    assert 'id="cycle-thin"' in page and "Not enough history yet" in page
    assert 'id="throughput-thin"' in page and 'id="flow-thin"' in page


def test_bad_range_falls_back_and_outsiders_are_refused(delivered, settings):
    settings.PROJECT_DEFAULT_ROLE = ""
    insider = factories.make_user(is_superuser=True)
    client = Client()
    client.force_login(insider)
    for days in ("abc", "-5", "99999999999999999999"):
        answer = client.get(f"/projects/{delivered.slug}/charts/?days={days}")
        assert answer.status_code == 200 and b"Last 14 days" in answer.content
    outsider = Client()
    outsider.force_login(factories.make_user())
    answer = outsider.get(f"/projects/{delivered.slug}/charts/")
    assert answer.status_code == 403 and b"viewer" in answer.content
    assert client.get("/projects/no-such/charts/").status_code == 404
