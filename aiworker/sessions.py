"""Django's database sessions, with the read every signed-in request makes as SQL built once.

`SESSION_ENGINE` names this module. Sessions are stored, written, expired and cleared exactly as
by `django.contrib.sessions.backends.db` (same table, same rows); only the lookup of a session
by its key skips building and compiling an ORM query, about 0.4 ms of each page's fixed work
(docs/PERFORMANCE.md, the board's profile). The async path (`aload`) is Django's own.
"""

from functools import cache
from typing import Any

from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone

from aiworker.sql_once import Columns, instance_from_row, one_row, select_list


@cache
def _session_lookup(vendor: str) -> tuple[str, Columns]:
    q = connection.ops.quote_name
    columns, fields = select_list(Session, "s")
    sql = (
        f"SELECT {columns} FROM {q(Session._meta.db_table)} s"
        f" WHERE s.{q('session_key')} = %s AND s.{q('expire_date')} > %s"
    )
    return sql, fields


class SessionStore(db.SessionStore):
    def _get_session_from_db(self) -> Any:
        """`Session.objects.get(session_key=…, expire_date__gt=now)`, or None (and no key)."""
        sql, fields = _session_lookup(connection.vendor)
        expire_date = Session._meta.get_field("expire_date")
        now = expire_date.get_db_prep_value(timezone.now(), connection)
        row = one_row(sql, [self.session_key, now])
        if row is None:
            self._session_key = None
            return None
        return instance_from_row(Session, fields, row)
