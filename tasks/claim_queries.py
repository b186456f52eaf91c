"""The claim's hot statements, written once as SQL (used by tasks.services.task_claim_next).

`rules.claimable` is the readable definition of a claimable task and stays the one used
everywhere else. Building it costs about a millisecond of CPU per query (the ORM compiles its
two `Exists` subqueries on every call), and under contention a claim runs it several times:
that was most of the MCP server's CPU per claim (docs/PERFORMANCE.md). These statements hold
the same conditions; tests/tasks/test_claim_queries.py checks them against `rules.claimable`.
"""

from functools import cache
from typing import Any

from django.db import connection

from aiworker.sql_once import Columns, instance_from_row, one_row, select_list
from tasks.models import Task
from tasks.states import ACTIVE_STATES, DEPENDENCY_MET_STATES, TaskState

_MET = tuple(DEPENDENCY_MET_STATES)
_ACTIVE = tuple(ACTIVE_STATES)
_SUBTASK_DONE = (*DEPENDENCY_MET_STATES, TaskState.CANCELLED)


def _placeholders(values: tuple | list) -> str:
    return ", ".join(["%s"] * len(values))


@cache
def statements(vendor: str) -> dict[str, str]:
    """SQL per database vendor: identifier quoting and FOR UPDATE differ."""
    q = connection.ops.quote_name
    task = q(Task._meta.db_table)
    through = q(Task.depends_on.through._meta.db_table)
    # c: the candidate. Same conditions as rules.unmet_dependencies_q / unfinished_subtasks_q.
    ready = (
        f"NOT EXISTS (SELECT 1 FROM {through} d JOIN {task} dep ON dep.id = d.to_task_id"
        f" WHERE d.from_task_id = c.id AND dep.state NOT IN ({_placeholders(_MET)}))"
        f" AND NOT EXISTS (SELECT 1 FROM {task} sub"
        f" WHERE sub.parent_id = c.id AND sub.state NOT IN ({_placeholders(_SUBTASK_DONE)}))"
    )
    lock = ""
    if connection.features.has_select_for_update_skip_locked:
        lock = " " + connection.ops.for_update_sql(skip_locked=True)
    # SQLite has no row locks: its writers are serialised by the database lock instead.
    columns = select_list(Task, "c")[0]
    return {
        "candidates": f"SELECT c.id FROM {task} c WHERE c.state = %s AND {ready}",
        "order": f" ORDER BY c.priority DESC, c.{q('position')}, c.created_at, c.id LIMIT %s",
        "lock": f"SELECT {columns} FROM {task} c WHERE c.id = %s AND c.state = %s{lock}",
        "ready": f"SELECT 1 FROM {task} c WHERE c.id = %s AND {ready}",
    }


def ready_params() -> list[str]:
    """The parameters of the readiness conditions, in the order the statements use them."""
    return [*_MET, *_SUBTASK_DONE]


def claimable_ids(
    *,
    project_id: int | None,
    exclude_ids: list[int],
    exclude_project_ids: list[int],
    limit: int,
) -> list[int]:
    """The first `limit` claimable task ids in claim order, read without locks."""
    sql = statements(connection.vendor)
    query = sql["candidates"]
    params: list = [TaskState.BACKLOG, *ready_params()]
    if project_id is not None:
        query += " AND c.project_id = %s"
        params.append(project_id)
    if exclude_ids:
        query += f" AND c.id NOT IN ({_placeholders(exclude_ids)})"
        params += exclude_ids
    if exclude_project_ids:
        query += f" AND c.project_id NOT IN ({_placeholders(exclude_project_ids)})"
        params += exclude_project_ids
    with connection.cursor() as cursor:
        cursor.execute(query + sql["order"], [*params, limit])
        return [row[0] for row in cursor.fetchall()]


def lock_backlog_task(task_id: int) -> Task | None:
    """Lock the task's row if it is still in the backlog and no one else holds it (SKIP LOCKED).

    Only that one row is locked: no join, so the project row stays free for other claimers.
    The row becomes the instance `Task.objects.raw` would give, without its per-query set-up.
    """
    row = one_row(statements(connection.vendor)["lock"], [task_id, TaskState.BACKLOG])
    return None if row is None else instance_from_row(Task, _task_columns(connection.vendor), row)


@cache
def _task_columns(vendor: str) -> Columns:
    return select_list(Task, "c")[1]


def is_ready(task_id: int) -> bool:
    """Whether the task's dependencies and subtasks are all done (a plain, non-locking read)."""
    with connection.cursor() as cursor:
        cursor.execute(statements(connection.vendor)["ready"], [task_id, *ready_params()])
        return cursor.fetchone() is not None


# The heartbeat's two task statements (every heartbeat of every agent runs them): as SQL for
# the same reason; `rules.held_task_ids` and the ORM update they replace are checked against
# them in tests/tasks/test_claim_queries.py.
@cache
def _lease_statements(vendor: str) -> dict[str, str]:
    q = connection.ops.quote_name
    task = q(Task._meta.db_table)
    holder = f"assigned_agent_id = %s AND state IN ({_placeholders(_ACTIVE)})"
    return {
        "held": f"SELECT id FROM {task} WHERE {holder} ORDER BY id",
        "renew": f"UPDATE {task} SET lease_expires_at = %s WHERE {holder} AND id IN ",
    }


def held_task_ids(agent_id: int) -> list[int]:
    """The active tasks an agent holds, oldest first (`rules.held_task_ids`, a plain read)."""
    with connection.cursor() as cursor:
        cursor.execute(_lease_statements(connection.vendor)["held"], [agent_id, *_ACTIVE])
        return [row[0] for row in cursor.fetchall()]


def renew_leases(*, agent_id: int, task_ids: list[int], expires_at: Any) -> int:
    """Set the lease of those of `task_ids` the agent still holds; how many it set."""
    sql = _lease_statements(connection.vendor)["renew"] + f"({_placeholders(task_ids)})"
    until = connection.ops.adapt_datetimefield_value(expires_at)
    with connection.cursor() as cursor:
        cursor.execute(sql, [until, agent_id, *_ACTIVE, *task_ids])
        return cursor.rowcount
