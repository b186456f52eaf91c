"""aiworker/sessions.py: Django's database sessions, whose lookup by key is SQL built once, find
what `Session.objects.get(session_key=…, expire_date__gt=now)` finds. Signing in and out
through it: tests/board/test_views.py::test_login_and_logout."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aiworker.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_site_uses_it():
    assert settings.SESSION_ENGINE == "aiworker.sessions"


def test_a_stored_session_loads_what_the_orm_loads():
    store = SessionStore()
    store["_auth_user_id"] = "7"
    store.create()
    key = store.session_key
    found = SessionStore(key)._get_session_from_db()
    orm = Session.objects.get(session_key=key, expire_date__gt=timezone.now())
    assert found is not None and found._state.adding is False
    assert (found.session_key, found.session_data, found.expire_date) == (
        orm.session_key,
        orm.session_data,
        orm.expire_date,
    )
    with CaptureQueriesContext(connection) as queries:
        assert SessionStore(key).load() == {"_auth_user_id": "7"}
    assert len(queries.captured_queries) == 1


def test_an_expired_or_unknown_session_is_none_and_forgets_its_key():
    store = SessionStore()
    store["a"] = 1
    store.create()
    Session.objects.filter(session_key=store.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    for key in (store.session_key, "x" * 32):
        reader = SessionStore(key)
        assert reader._get_session_from_db() is None
        assert reader.session_key is None
        assert reader.load() == {}
