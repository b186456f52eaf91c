"""Password guessing fails on every sign-in surface (/login/, the admin login, /api/auth/token/):
after LOGIN_FAILURE_LIMIT failures from one address, or for one username (an unknown one too),
sign-in is refused for a while, with a page or an answer saying so, and even the right password
gets nothing until then (django-axes, aiworker/settings.py)."""

import pytest
from axes.models import AccessAttempt
from django.test import Client
from rest_framework.test import APIClient

from tests import factories

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests"  # tests/factories.make_user's


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = 3


def _login(client, username, password, address="10.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_login_page_locks_a_username_after_repeated_failures_and_says_so():
    factories.make_user(username="carol")
    client = Client()
    for _ in range(2):
        assert _login(client, "carol", "wrong").status_code == 200  # the form again
    locked = _login(client, "carol", "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "Try again in 15" in locked.content.decode()
    # The right password, from another address, changes nothing while the lock lasts.
    right = _login(client, "carol", PASSWORD, address="10.0.0.2")
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


def test_one_address_guessing_many_usernames_is_locked_too():
    factories.make_user(username="dave")
    client = Client()
    for name in ("nobody-1", "nobody-2", "nobody-3"):  # unknown usernames count
        answer = _login(client, name, "wrong", address="10.0.0.9")
    assert answer.status_code == 429
    assert _login(client, "dave", PASSWORD, address="10.0.0.9").status_code == 429
    # Another address may still sign dave in.
    assert _login(client, "dave", PASSWORD, address="10.0.0.10").status_code == 302


def test_admin_login_is_throttled_the_same_way():
    factories.make_user(username="erin", is_staff=True)
    client = Client()
    for _ in range(3):
        answer = client.post(
            "/admin/login/?next=/admin/",
            {"username": "erin", "password": "wrong"},
            REMOTE_ADDR="10.0.1.1",
        )
    assert answer.status_code == 429
    assert "Too many failed sign-ins" in answer.content.decode()


def test_token_endpoint_answers_429_once_locked_and_gives_no_token():
    factories.make_user(username="frank")
    api = APIClient()
    answers = [
        api.post("/api/auth/token/", {"username": "frank", "password": "x"}, format="json")
        for _ in range(3)
    ]
    assert [a.status_code for a in answers[:2]] == [400, 400]
    assert answers[2].status_code == 429
    assert answers[2].json()["code"] == "locked_out"
    right = api.post("/api/auth/token/", {"username": "frank", "password": PASSWORD}, format="json")
    assert right.status_code == 429 and "token" not in right.json()


def test_a_success_before_the_limit_resets_the_count():
    factories.make_user(username="gina")
    client = Client()
    for _ in range(2):
        _login(client, "gina", "wrong")
    assert _login(client, "gina", PASSWORD).status_code == 302
    assert AccessAttempt.objects.filter(username="gina").count() == 0
