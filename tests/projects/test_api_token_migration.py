"""Migration projects/0005: the old clear-text keys of DRF's authtoken table become hashed
write tokens (scripts keep working until they expire), and the table is dropped."""

import importlib
import secrets

import pytest
from django.apps import apps
from django.db import connection
from rest_framework.test import APIClient

from projects.models import ApiToken
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
migration = importlib.import_module("projects.migrations.0005_api_tokens")


def test_old_keys_move_in_hashed_and_the_clear_table_is_dropped():
    user = factories.make_user()
    old_key = secrets.token_hex(20)  # DRF's format: 40 hex characters
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {qn(migration.LEGACY_TABLE)} "
            f"({qn('key')} varchar(40) PRIMARY KEY, {qn('user_id')} integer, created datetime)"
        )
        cursor.execute(
            f"INSERT INTO {qn(migration.LEGACY_TABLE)} ({qn('key')}, {qn('user_id')}) "
            "VALUES (%s, %s)",
            [old_key, user.pk],
        )
    with connection.schema_editor() as editor:
        migration.move_legacy_tokens(apps, editor)

    assert migration.LEGACY_TABLE not in connection.introspection.table_names()
    token = ApiToken.objects.get(user=user)
    assert token.scope == "write" and token.prefix == old_key[:8]
    assert old_key not in [str(v) for v in ApiToken.objects.values().get().values()]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old_key}")
    assert client.get("/api/tasks/").status_code == 200


def test_a_database_without_the_old_table_is_left_alone():
    with connection.schema_editor() as editor:
        migration.move_legacy_tokens(apps, editor)
    assert not ApiToken.objects.exists()
