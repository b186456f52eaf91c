"""The record of each agent's MCP tool calls made by its agent CLI (not by the runner).

One row per agent and tool, counted up in place: a CLI's few dozen calls a task cost one
UPDATE each, and the runner's own calls (the claim path) are not recorded at all.
"""

from functools import cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agents.models import Agent, AgentMcpCall

RUNNER_CLIENT = "runner"  # what the runner sends as X-AiWorker-Client


def agent_record_mcp_call(
    *, agent: Agent, tool: str, error_code: str = "", client: str = ""
) -> None:
    now = timezone.now()
    count: dict[str, Any] = {
        "agent_id": agent.pk,
        "tool": tool[:64],
        "at": now,
        "client": client[:200],
    }
    if _count_up(**count, error=error_code):
        return
    try:
        with transaction.atomic():
            AgentMcpCall.objects.create(
                agent=agent,
                tool=tool[:64],
                calls=1,
                refused=1 if error_code else 0,
                last_error_code=error_code[:40],
                last_client=client[:200],
                last_at=now,
            )
    except IntegrityError:  # the same agent's parallel first call of this tool won the insert
        _count_up(**count, error=error_code)


def _count_up(*, agent_id: int, tool: str, at: Any, client: str, error: str) -> bool:
    """`rows.update(calls=F("calls") + 1, …)` as SQL built once (it runs on every CLI call, and
    compiling the UPDATE cost more than running it); whether the row was there."""
    params = [connection.ops.adapt_datetimefield_value(at), client]
    if error:
        params.append(error[:40])
    with connection.cursor() as cursor:
        cursor.execute(_count_up_sql(connection.vendor, bool(error)), [*params, agent_id, tool])
        return cursor.rowcount > 0


@cache
def _count_up_sql(vendor: str, refused: bool) -> str:
    q = connection.ops.quote_name
    sets = f"{q('calls')} = {q('calls')} + 1, {q('last_at')} = %s, {q('last_client')} = %s"
    if refused:
        sets += f", {q('refused')} = {q('refused')} + 1, {q('last_error_code')} = %s"
    table = q(AgentMcpCall._meta.db_table)
    return f"UPDATE {table} SET {sets} WHERE {q('agent_id')} = %s AND {q('tool')} = %s"


def agent_cli_call_count(agent: Agent) -> int:
    """How many tool calls the agent's CLI has made, ever (the runner compares two readings).

    `AgentMcpCall.objects.filter(agent=agent).aggregate(Sum("calls"))` as SQL built once: every
    heartbeat answers it, and compiling the aggregate cost more than running it.
    """
    with connection.cursor() as cursor:
        cursor.execute(_count_sql(connection.vendor), [agent.pk])
        return int(cursor.fetchone()[0] or 0)  # MariaDB sums to a DECIMAL


@cache
def _count_sql(vendor: str) -> str:
    q = connection.ops.quote_name
    return f"SELECT SUM(calls) FROM {q(AgentMcpCall._meta.db_table)} WHERE agent_id = %s"
