"""The database connection dropped: a clear 503, a reconnect on the next request, and no
half-written task. The real faults need MariaDB (a connection of our own is KILLed); the
answer's shape is also checked on SQLite with the error raised by a stand-in."""

import json
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.urls import reverse

from tasks.models import Task, TaskEvent
from tasks.services import transitions
from tasks.states import TaskState
from tests import factories

S = TaskState


def _kill_own_connection() -> None:
    """KILL the server-side thread of this process's Django connection, from another one."""
    import MySQLdb

    with connection.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        (own_id,) = cursor.fetchone()
    cfg = connection.settings_dict
    killer = MySQLdb.connect(
        host=cfg["HOST"] or "127.0.0.1",
        port=int(cfg["PORT"] or 3306),
        user=cfg["USER"],
        password=cfg["PASSWORD"] or "",
    )
    try:
        killer.cursor().execute(f"KILL {int(own_id)}")
    finally:
        killer.close()


def _move(client: Client, task: Task, to_state: str = "in_progress") -> object:
    url = reverse("board-move", args=[task.project.slug, task.pk])
    return client.post(url, json.dumps({"to_state": to_state}), "application/json")


@pytest.mark.django_db
def test_operational_error_is_a_503_in_json_and_html(user, project):
    """Stand-in: the selector raises what a dropped connection raises."""
    task = factories.make_task(project=project)
    client = Client()
    client.force_login(user)
    with mock.patch(
        "tasks.board_selectors.project_for_board",
        side_effect=OperationalError(2013, "Lost connection to server during query"),
    ):
        page = client.get(reverse("board", args=[project.slug]))
        moved = _move(client, task)
    assert page.status_code == 503
    assert "database is not reachable" in page.content.decode()
    assert page["Retry-After"] == "5"
    assert moved.status_code == 503
    assert moved.json()["code"] == "unavailable"
    task.refresh_from_db()
    assert task.state == S.BACKLOG


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_killed_connection_answers_503_then_reconnects(user, project):
    task = factories.make_task(project=project)
    client = Client()
    client.force_login(user)
    _kill_own_connection()
    answer = client.get("/api/tasks/", HTTP_ACCEPT="application/json")
    assert answer.status_code == 503
    assert answer.json()["code"] == "unavailable"
    # The broken connection was closed at the end of that request; this one reconnects.
    assert client.get("/api/tasks/").status_code == 200
    _kill_own_connection()
    assert client.get(reverse("board", args=[project.slug])).status_code == 503
    assert client.get(reverse("board", args=[project.slug])).status_code == 200
    task.refresh_from_db()
    assert task.state == S.BACKLOG


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_transition_cut_mid_transaction_leaves_the_task_unchanged(user, project):
    """The connection dies after the row is locked and updated but before the event is
    written: the server rolls the whole transaction back."""
    task = factories.make_task(project=project)
    client = Client()
    client.force_login(user)
    events_before = TaskEvent.objects.filter(task=task).count()
    real_record_event = transitions.record_event

    def cut_then_record(*args, **kwargs):
        _kill_own_connection()
        return real_record_event(*args, **kwargs)

    # Cancelling needs no agent, so the move reaches the event write (where the cut is).
    with mock.patch.object(transitions, "record_event", side_effect=cut_then_record):
        answer = _move(client, task, "cancelled")
    assert answer.status_code == 503
    assert answer.json()["code"] == "unavailable"
    connection.close()
    task.refresh_from_db()
    assert task.state == S.BACKLOG
    assert task.state_changed_at == Task.objects.get(pk=task.pk).state_changed_at
    assert TaskEvent.objects.filter(task=task).count() == events_before
    # And the same move works once the database is back.
    assert _move(client, task, "cancelled").status_code == 200
    task.refresh_from_db()
    assert task.state == S.CANCELLED
