"""Hot reads as SQL built once, their rows turned into model instances as the ORM would.

For the few reads every MCP call runs (an agent's token, the question a check_response waits
on), building the ORM's query cost more CPU than the database's answer (docs/PERFORMANCE.md).
Such a read builds its SQL once per database vendor (`functools.cache`) from the models' own
columns, and `instance_from_row` passes each value through the converters the ORM would use
(JSON, time zones, booleans on MariaDB), so the instance is the one `QuerySet.get` returns.
"""

from typing import Any

from django.db import connection
from django.db.models import Model

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
