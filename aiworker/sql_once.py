"""Hot reads as SQL built once, their rows turned into model instances as the ORM would.

For the few reads every MCP call runs (an agent's token, the question a check_response waits
on), building the ORM's query cost more CPU than the database's answer (docs/PERFORMANCE.md).
Such a read builds its SQL once per database vendor (`functools.cache`) from the models' own
columns, and `instance_from_row` passes each value through the converters the ORM would use
(JSON, time zones, booleans on MariaDB), so the instance is the one `QuerySet.get` returns.
"""

from typing import Any

from django.db import connection
from django.db.models import Model, QuerySet

# (attname, column expression, the ORM's converters of its values) per concrete field.
Columns = list[tuple[str, Any, list]]


def select_list(model: type[Model], alias: str) -> tuple[str, Columns]:
    """The model's concrete columns as `alias.col, …`, in the order `Model.from_db` expects."""
    q = connection.ops.quote_name
    concrete: Any = model._meta.concrete_fields
    columns = ", ".join(f"{alias}.{q(f.column)}" for f in concrete)
    converters = [
        (
            f.attname,
            f.cached_col,
            connection.ops.get_db_converters(f.cached_col) + f.get_db_converters(connection),
        )
        for f in concrete
    ]
    return columns, converters


def one_row(sql: str, params: list[Any]) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def instance_from_row(model: type[Model], fields: Columns, values: tuple) -> Any:
    converted = []
    for (_, column, converters), value in zip(fields, values, strict=True):
        for convert in converters:
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [name for name, _, _ in fields], converted)


class Slot:
    """A value a prepared query takes at each run, stood in for by a sentinel when it compiles.

    The sentinel is an integer (or text) no real row holds; it must reach the compiled
    parameters unchanged, which `prepare` checks.
    """

    _next = -(2**62)

    def __init__(self, name: str, kind: type = int):
        Slot._next -= 1
        self.name = name
        self.sentinel: Any = Slot._next if kind is int else f"\x00slot {name} {Slot._next}\x00"


class Prepared:
    """A `values_list` queryset compiled once: its SQL, its parameters with the slots marked,
    and the converters the ORM would run on each column (datetimes and booleans on SQLite,
    time zones on MariaDB). `rows(...)` runs it with this call's values and returns what
    `list(queryset)` would, without building and compiling the query again: for a query with
    a dozen annotations that is most of its cost. Build it once per process and database
    vendor (`functools.cache`), like the statements above."""

    def __init__(self, queryset: QuerySet, *slots: Slot):
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        by_sentinel = {slot.sentinel: slot.name for slot in slots}
        self.sql: str = sql
        self.params = list(params)
        self.slots = [
            (i, by_sentinel[p])
            for i, p in enumerate(params)
            if isinstance(p, int | str) and p in by_sentinel
        ]
        missing = {slot.name for slot in slots} - {name for _, name in self.slots}
        if missing or any(str(slot.sentinel) in sql for slot in slots):
            raise ValueError(f"slots not passed as parameters: {sorted(missing)}")
        selected = [column for column, _, _ in compiler.select[: compiler.col_count]]
        self.converters = [
            (i, converters, expression)
            for i, (converters, expression) in sorted(compiler.get_converters(selected).items())
        ]

    def rows(self, **values: Any) -> list[Any]:
        params = self.params.copy()
        for i, name in self.slots:
            params[i] = values[name]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows: list[Any] = cursor.fetchall()
        if not self.converters or not rows:
            return rows
        # Column by column: one comprehension per converter instead of a loop per value.
        columns: list[Any] = list(zip(*rows, strict=True))
        for i, converters, expression in self.converters:
            column = columns[i]
            for convert in converters:
                column = [convert(value, expression, connection) for value in column]
            columns[i] = column
        return list(zip(*columns, strict=True))
