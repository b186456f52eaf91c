"""Reads of projects on every agent's path, as SQL built once (aiworker/sql_once.py)."""

from functools import cache

from django.db import connection

from aiworker.sql_once import Columns, instance_from_row, one_row, select_list
from projects.models import Project


def project_by_slug(slug: str) -> Project | None:
    """`Project.objects.filter(slug=…).first()`: one statement built once. A claim that names
    its project reads it first, and compiling the ORM's query cost more than running it."""
    sql, fields = _by_slug(connection.vendor)
    row = one_row(sql, [slug])
    return None if row is None else instance_from_row(Project, fields, row)


@cache
def _by_slug(vendor: str) -> tuple[str, Columns]:
    columns, fields = select_list(Project, "p")
    table = connection.ops.quote_name(Project._meta.db_table)
    return f"SELECT {columns} FROM {table} p WHERE p.slug = %s", fields
