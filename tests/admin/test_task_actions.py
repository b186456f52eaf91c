"""Admin actions on tasks call the services: a legal move happens, a refused one shows an
error message naming the allowed targets and changes nothing, and neither is an error page."""

import pytest
from django.contrib.messages import constants
from django.test import Client

from tasks.admin import ADMIN_MOVE_TARGETS
from tasks.models import Task, TaskEvent
from tasks.states import ACTIVE_STATES, TaskState, plain_move_targets
from tests.factories import make_agent, make_project, make_task, make_user

S = TaskState
CHANGELIST = "/admin/tasks/task/"


def run_action(client: Client, action: str, *tasks: Task):
    response = client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [t.pk for t in tasks], "index": 0},
        follow=True,
    )
    assert response.status_code == 200
    return [(m.level, m.message) for m in response.context["messages"]]


def state_of(task: Task) -> str:
    task.refresh_from_db()
    return task.state


# One legal and one illegal source state for each "move to" action (plain moves only).
MOVES = [
    (target, legal, illegal)
    for target in S.values
    for legal in [next((f for f in S.values if target in plain_move_targets(f)), None)]
    for illegal in [
        next(f for f in S.values if target not in plain_move_targets(f) and f != target)
    ]
    if legal is not None and target not in ACTIVE_STATES
]


@pytest.mark.parametrize(("target", "legal", "illegal"), MOVES)
def test_move_action_legal_and_illegal(admin_client_, target, legal, illegal):
    project = make_project()
    ok = make_task(project=project, state=legal)
    refused = make_task(project=project, state=illegal)
    events = TaskEvent.objects.count()

    messages = run_action(admin_client_, f"move_to_{target}", ok, refused)

    assert state_of(ok) == target
    assert state_of(refused) == illegal
    assert TaskEvent.objects.count() == events + 1
    errors = [text for level, text in messages if level == constants.ERROR]
    assert len(errors) == 1
    allowed = ", ".join(sorted(plain_move_targets(illegal))) or "none"
    assert f"Allowed from '{illegal}': {allowed}." in errors[0]
    assert (constants.SUCCESS, f"Moved to {S(target).label}: #{ok.pk}.") in messages


def test_every_target_state_has_an_action(admin_client_):
    response = admin_client_.get(CHANGELIST)
    choices = dict(response.context["action_form"].fields["action"].choices)
    for state in S.values:
        # Staging and production are the release actions'; an active state needs an agent.
        offered = state in ADMIN_MOVE_TARGETS
        assert (f"move_to_{state}" in choices) == offered
        assert offered == (state not in (*ACTIVE_STATES, "staging", "production"))
    assert {"requeue", "cancel", "approve"} <= set(choices)


def test_requeue(admin_client_):
    agent, _ = make_agent()
    task = make_task(state=S.IN_PROGRESS, assigned_agent=agent)
    done = make_task(state=S.PRODUCTION)
    messages = run_action(admin_client_, "requeue", task, done)
    task.refresh_from_db()
    assert (task.state, task.assigned_agent) == ("backlog", None)
    assert "Requeued by" in TaskEvent.objects.filter(task=task).last().message
    assert state_of(done) == "production"
    assert any(level == constants.ERROR and "'production'" in t for level, t in messages)


def test_cancel(admin_client_):
    task = make_task(state=S.APPROVED)
    staged = make_task(state=S.STAGING)
    messages = run_action(admin_client_, "cancel", task, staged)
    assert state_of(task) == "cancelled"
    assert state_of(staged) == "staging"
    assert any(
        level == constants.ERROR and "Allowed from 'staging': none." in t for level, t in messages
    )


def test_approve(admin_client_):
    task = make_task(state=S.READY_TO_TEST)
    backlog = make_task(state=S.BACKLOG)
    messages = run_action(admin_client_, "approve", task, backlog)
    assert state_of(task) == "approved"
    assert state_of(backlog) == "backlog"
    assert any(level == constants.ERROR and "not 'ready_to_test'" in t for level, t in messages)


def test_approve_is_not_offered_without_the_permission(client, db):
    from django.contrib.auth.models import Permission

    staff = make_user(is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_task", "view_task"])
    )
    client.force_login(staff)
    task = make_task(state=S.READY_TO_TEST)
    response = client.get(CHANGELIST)
    assert "approve" not in dict(response.context["action_form"].fields["action"].choices)
    # Posting it anyway changes nothing.
    client.post(CHANGELIST, {"action": "approve", "_selected_action": [task.pk]}, follow=True)
    assert state_of(task) == "ready_to_test"


def test_starting_a_task_is_not_an_admin_bulk_action(admin_client_):
    """A task becomes active only with a named agent (the board's start dialog, the REST
    transition's `agent`): posting the old bulk action anyway changes nothing."""
    task = make_task()
    events = TaskEvent.objects.count()
    response = admin_client_.post(
        CHANGELIST,
        {"action": "move_to_in_progress", "_selected_action": [task.pk], "index": 0},
        follow=True,
    )
    assert response.status_code == 200
    assert state_of(task) == "backlog" and TaskEvent.objects.count() == events
