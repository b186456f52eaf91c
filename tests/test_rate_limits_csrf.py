"""Security checks of issue 8: rate limits (webhook, token clients) answer 429 and change
nothing; the board's forms refuse a POST without the CSRF token."""

import json

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from rest_framework.throttling import ScopedRateThrottle

from aiworker.throttles import TokenRateThrottle
from projects.api_tokens import api_token_create
from projects.models import WebhookDelivery
from tasks.models import Task
from tasks.states import TaskState
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counts():
    cache.clear()
    yield
    cache.clear()


def test_webhook_rate_limit_answers_429(monkeypatch, project):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"webhook": "3/minute"})
    client = Client()
    url = "/api/webhooks/gitea/?project=" + project.slug
    headers = {
        "HTTP_X_GITEA_EVENT": "push",
        "HTTP_X_GITEA_DELIVERY": "d-1",
        "HTTP_X_GITEA_SIGNATURE": "0" * 64,  # forged: refused, but still counted
    }
    answers = [client.post(url, "{}", "application/json", **headers) for _ in range(4)]
    assert [a.status_code == 429 for a in answers] == [False, False, False, True]
    assert "throttled" in answers[-1].json()["detail"].lower() or answers[-1].has_header(
        "Retry-After"
    )
    assert WebhookDelivery.objects.count() == 0


def test_token_client_rate_limit_answers_429_and_session_is_not_counted(monkeypatch, user):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    _, key = api_token_create(user=user, scope="write")
    scripted = Client(HTTP_AUTHORIZATION=f"Token {key}")
    codes = [scripted.get("/api/tasks/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    person = Client()
    person.force_login(user)
    assert all(person.get("/api/tasks/").status_code == 200 for _ in range(5))


def test_throttled_token_write_changes_nothing(monkeypatch, user, project):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "1/minute"})
    _, key = api_token_create(user=user, scope="write")
    scripted = Client(HTTP_AUTHORIZATION=f"Token {key}")
    scripted.get("/api/tasks/")
    task = factories.make_task(project=project)
    url = f"/api/tasks/{task.pk}/transition/"
    answer = scripted.post(url, json.dumps({"to_state": "in_progress"}), "application/json")
    assert answer.status_code == 429
    task.refresh_from_db()
    assert task.state == TaskState.BACKLOG


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("board-task-create", {"title": "sneaky", "description": "", "priority": 1}),
        ("board-task-action", {"action": "cancel"}),
        ("board-move", {"to_state": "cancelled"}),
    ],
)
def test_board_forms_refuse_a_post_without_csrf_token(user, project, name, data):
    task = factories.make_task(project=project, title="kept")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    if name == "board-task-create":
        url = reverse(name, args=[project.slug])
    elif name == "board-task-action":
        url = reverse(name, args=[project.slug, task.pk, data.pop("action")])
    else:
        url = reverse(name, args=[project.slug, task.pk])
    as_json = name == "board-move"  # the board's JavaScript posts JSON with X-CSRFToken
    body = json.dumps(data) if as_json else data
    kind = "application/json" if as_json else "application/x-www-form-urlencoded"
    if not as_json:
        body = "&".join(f"{k}={v}" for k, v in data.items())
    answer = client.post(url, body, kind)
    assert answer.status_code == 403
    assert list(Task.objects.values_list("title", "state")) == [("kept", TaskState.BACKLOG)]
    # With the token the same request works (the check is the token, not the login).
    client.get(reverse("board", args=[project.slug]))
    token = client.cookies["csrftoken"].value
    answer = client.post(url, body, kind, HTTP_X_CSRFTOKEN=token)
    assert answer.status_code in (200, 302)
