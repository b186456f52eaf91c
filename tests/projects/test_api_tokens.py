"""People's API tokens as an attacker would try them: a read token writing, an expired or
revoked token, someone else's token, a token looked for in the database, the admin, a page or a
cookie. Each attempt fails and changes nothing; the token is shown once, to its owner."""

import hashlib
import logging
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from aiworker.log_redaction import RedactSecretsFilter
from projects.api_tokens import api_token_create
from projects.models import ApiToken
from tasks.models import Task
from tests import factories

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests"  # tests/factories.make_user's


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def _token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _tasks() -> list:
    return list(Task.objects.values_list("pk", "title", "state"))


def test_the_token_endpoint_answers_a_new_token_once_and_keeps_only_its_hash():
    user = factories.make_user(username="ann")
    api = APIClient()
    answer = api.post(
        "/api/auth/token/", {"username": "ann", "password": PASSWORD}, format="json"
    ).json()
    key = answer["token"]
    assert key.startswith("aiwu_") and len(key) > 40
    assert answer["scope"] == "write" and answer["status"] == "active"
    row = ApiToken.objects.get(user=user)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(row.prefix) and len(row.prefix) < len(key) // 3
    assert key not in [str(v) for v in ApiToken.objects.values().get().values()]
    assert row.expires_at > timezone.now() + timedelta(days=29)
    # A second call makes a second token; the first still works (nothing was overwritten).
    second = api.post(
        "/api/auth/token/", {"username": "ann", "password": PASSWORD}, format="json"
    ).json()["token"]
    assert second != key
    assert _token_client(key).get("/api/tasks/").status_code == 200
    # The owner's list never holds a token again.
    listed = _token_client(second).get("/api/auth/tokens/")
    assert listed.status_code == 200
    assert key not in listed.content.decode() and second not in listed.content.decode()
    assert [t["prefix"] for t in listed.json()["results"]] == [second[:12], key[:12]]


def test_a_read_token_may_read_but_not_write(project):
    user = factories.make_user()
    _, key = api_token_create(user=user, scope="read")
    task = factories.make_task(project=project, title="kept")
    client = _token_client(key)
    before = _tasks()
    assert client.get("/api/tasks/").status_code == 200
    created = client.post("/api/tasks/", {"project": project.slug, "title": "sneaky"})
    moved = client.post(f"/api/tasks/{task.pk}/transition/", {"to_state": "cancelled"})
    deleted = client.delete(f"/api/tasks/{task.pk}/")
    tokens = client.post("/api/auth/tokens/", {"scope": "write"})
    for refused in (created, moved, deleted, tokens):
        assert refused.status_code == 403
        assert "read scope" in refused.json()["detail"]
    assert _tasks() == before
    assert ApiToken.objects.count() == 1  # the read token could not make itself a write one


def test_a_write_token_writes_within_the_owners_roles(project):
    user = factories.make_user()
    _, key = api_token_create(user=user, scope="write")
    answer = _token_client(key).post("/api/tasks/", {"project": project.slug, "title": "made"})
    assert answer.status_code == 201
    assert Task.objects.filter(title="made").count() == 1


@pytest.mark.parametrize("how", ["expired", "revoked", "owner inactive"])
def test_expired_revoked_or_inactive_tokens_are_refused_and_change_nothing(project, how):
    user = factories.make_user()
    token, key = api_token_create(user=user, scope="write")
    if how == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))
    elif how == "revoked":
        revoked = _token_client(key).post(f"/api/auth/tokens/{token.pk}/revoke/")
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    else:
        type(user).objects.filter(pk=user.pk).update(is_active=False)
    before = _tasks()
    client = _token_client(key)
    read = client.get("/api/tasks/")
    write = client.post("/api/tasks/", {"project": project.slug, "title": "sneaky"})
    want = {"expired": "expired", "revoked": "revoked", "owner inactive": "inactive"}[how]
    for refused in (read, write):
        assert refused.status_code in (401, 403)
        assert want in refused.json()["detail"]
    assert _tasks() == before


def test_a_forged_or_agent_token_is_refused():
    _, agent_token = factories.make_agent()
    for key in ("aiwu_" + "A" * 43, agent_token):
        answer = _token_client(key).get("/api/tasks/")
        assert answer.status_code in (401, 403)
        assert answer.json()["detail"] == "Invalid token."


def test_nobody_lists_or_revokes_someone_elses_token():
    owner, other = factories.make_user(), factories.make_user()
    token, key = api_token_create(user=owner, scope="read")
    _, other_key = api_token_create(user=other, scope="write")
    intruder = _token_client(other_key)
    assert intruder.post(f"/api/auth/tokens/{token.pk}/revoke/").status_code == 404
    assert token.prefix not in intruder.get("/api/auth/tokens/").content.decode()
    browser = Client()
    browser.force_login(other)
    assert browser.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404
    assert token.prefix not in browser.get("/account/tokens/").content.decode()
    for beyond in (2**63, 10**30):  # an id past 64 bits reached SQLite as an OverflowError
        assert intruder.post(f"/api/auth/tokens/{beyond}/revoke/").status_code == 404
        assert browser.post(f"/account/tokens/{beyond}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert _token_client(key).get("/api/tasks/").status_code == 200


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 99999999999}, "expires_in_days"),
        ({"scope": "admin"}, "scope"),
        ({"name": "x" * 101}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_token_requests_answer_400_and_make_nothing(data, field):
    user = factories.make_user()
    client = APIClient()
    client.force_authenticate(user)
    answer = client.post("/api/auth/tokens/", data, format="json")
    assert answer.status_code == 400
    assert field in answer.json()["errors"]
    assert not ApiToken.objects.exists()


def test_the_page_shows_a_new_token_once_and_never_in_a_cookie():
    user = factories.make_user()
    browser = Client()
    browser.force_login(user)
    made = browser.post("/account/tokens/", {"name": "CI", "scope": "read", "expires_in_days": "7"})
    assert made.status_code == 200
    assert "no-store" in made["Cache-Control"]
    row = ApiToken.objects.get(user=user)
    page = made.content.decode()
    start = page.index('id="new-token">') + len('id="new-token">')
    key = page[start : page.index("<", start)]
    assert key.startswith(row.prefix) and row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert all(key not in morsel.value for morsel in made.cookies.values())
    assert all(key not in str(v) for v in browser.session.values())
    again = browser.get("/account/tokens/").content.decode()
    assert key not in again and row.prefix in again
    assert _token_client(key).get("/api/tasks/").status_code == 200
    # Revoking from the page: the message names the prefix only, and the token stops working.
    revoked = browser.post(f"/account/tokens/{row.pk}/revoke/", follow=True)
    assert revoked.status_code == 200
    assert all(key not in morsel.value for morsel in revoked.cookies.values())
    assert _token_client(key).get("/api/tasks/").status_code in (401, 403)


def test_bad_input_on_the_page_is_a_400_with_the_reason():
    user = factories.make_user()
    browser = Client()
    browser.force_login(user)
    answer = browser.post("/account/tokens/", {"scope": "read", "expires_in_days": "100000"})
    assert answer.status_code == 400
    assert "from 1 to 365 days" in answer.content.decode()
    assert not ApiToken.objects.exists()


def test_the_admin_shows_the_prefix_never_the_token_or_its_hash(admin_client):
    user = factories.make_user()
    token, key = api_token_create(user=user, scope="write")
    listing = admin_client.get("/admin/projects/apitoken/").content.decode()
    change = admin_client.get(f"/admin/projects/apitoken/{token.pk}/change/").content.decode()
    for page in (listing, change):
        assert token.prefix in page
        assert key not in page and token.key_hash not in page
    assert admin_client.get("/admin/projects/apitoken/add/").status_code == 403
    admin_client.post(
        "/admin/projects/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert _token_client(key).get("/api/tasks/").status_code in (401, 403)


def test_no_token_reaches_a_log_line():
    user = factories.make_user()
    _, key = api_token_create(user=user)
    _, agent_token = factories.make_agent()
    record = logging.LogRecord(
        "x", logging.INFO, "", 0, "tokens %s and %s", (key, agent_token), None
    )
    RedactSecretsFilter().filter(record)
    line = record.getMessage()
    assert key not in line and agent_token not in line and "aiwu_[redacted]" in line


def test_the_token_endpoint_still_takes_a_form_body_as_drfs_did():
    factories.make_user(username="bea")
    answer = Client().post(  # what `curl -d username=…&password=…` sends
        "/api/auth/token/",
        f"username=bea&password={PASSWORD}",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    assert _token_client(answer.json()["token"]).get("/api/tasks/").status_code == 200
