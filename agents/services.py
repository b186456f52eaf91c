"""Agents: creation with a one-time token, authentication, heartbeats, the offline watchdog."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent, AgentKind, AgentStatus
from aiworker import errors, live
from aiworker.actors import Actor
from aiworker.sql_once import Columns, instance_from_row, one_row, select_list
from projects.models import Project

TOKEN_BYTES = 32
# agent_touch writes the heartbeat and renews leases at most this often per agent.
TOUCH_INTERVAL = timedelta(seconds=5)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _broadcast_status(agent: Agent, *, project_ids: list[int] | None = None) -> None:
    """agent.status to the boards that show the agent: those with a card assigned to it.

    A board shows an agent only on its task cards, so an unrestricted agent's status goes to
    the projects of its tasks, not to every project (one send per board that can use it).
    """
    data = {
        "id": agent.pk,
        "name": agent.name,
        "status": agent.status,
        "message": agent.status_message,
        "current_task": agent.current_task_id,
    }
    if project_ids is None:
        from tasks.models import Task

        project_ids = (
            [agent.project_id]
            if agent.project_id
            else list(
                Task.objects.filter(assigned_agent_id=agent.pk)
                .order_by()
                .values_list("project_id", flat=True)
                .distinct()
            )
        )
    for project_id in project_ids:
        live.broadcast_on_commit(project_id=project_id, event="agent.status", data=data)


@transaction.atomic
def agent_create(
    *,
    name: Any,
    kind: str = AgentKind.CLAUDE_CODE,
    project: Project | None = None,
    can_plan: bool = False,
    capabilities: list[str] | None = None,
) -> tuple[Agent, str]:
    """Create an agent and return it with its token; the token is never retrievable again."""
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise errors.InvalidInput(
            "name must be 1–100 characters.", fields={"name": ["1–100 characters."]}
        )
    if kind not in AgentKind.values:
        raise errors.InvalidInput(
            f"kind must be one of {', '.join(AgentKind.values)}.",
            fields={"kind": ["Unknown kind."]},
        )
    if Agent.objects.filter(name=name.strip()).exists():
        raise errors.InvalidInput(
            f"An agent named {name!r} exists.", fields={"name": ["Already taken."]}
        )
    token = "aiw_" + secrets.token_urlsafe(TOKEN_BYTES)
    agent = Agent.objects.create(
        name=name.strip(),
        kind=kind,
        project=project,
        can_plan=can_plan,
        capabilities=capabilities or [],
        token_hash=hash_token(token),
        token_prefix=token[:8],
        status=AgentStatus.STARTING,
    )
    return agent, token


@transaction.atomic
def agent_rotate_token(*, agent_id: int) -> str:
    agent = Agent.objects.select_for_update().get(pk=agent_id)
    token = "aiw_" + secrets.token_urlsafe(TOKEN_BYTES)
    agent.token_hash, agent.token_prefix, agent.revoked_at = hash_token(token), token[:8], None
    agent.save(update_fields=["token_hash", "token_prefix", "revoked_at"])
    live.end_agent_waits_on_commit(agent.pk)  # the old token's waits end without the answer
    return token


def agent_revoke(*, agent_id: int) -> None:
    Agent.objects.filter(pk=agent_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    live.end_agent_waits_on_commit(agent_id)  # its check_response waits end at once


def agent_authenticate(token: Any) -> Agent:
    """The agent a bearer token belongs to, or PermissionDenied for unknown or revoked."""
    if not isinstance(token, str) or not token.strip():
        raise errors.PermissionDenied("No agent token given. Send 'Authorization: Bearer <token>'.")
    agent = _agent_by_token_hash(hash_token(token.strip()))
    if agent is None:
        raise errors.PermissionDenied("Unknown agent token.")
    if agent.revoked_at is not None:
        raise errors.PermissionDenied(f"The token of agent {agent.name} was revoked.")
    return agent


def _agent_by_token_hash(token_hash: str) -> Agent | None:
    """`Agent.objects.select_related("project").get(token_hash=…)`, or None, from SQL built once.

    Every MCP request of every agent runs it (the server is stateless and checks the token each
    time); building the ORM's query cost more CPU than the rest of a heartbeat's statements
    together. The rows become model instances through the fields' own converters, as the ORM's.
    """
    sql, agent_fields, project_fields = _token_lookup(connection.vendor)
    row = one_row(sql, [token_hash])
    if row is None:
        return None
    agent = instance_from_row(Agent, agent_fields, row[: len(agent_fields)])
    project = None
    if agent.project_id is not None:
        project = instance_from_row(Project, project_fields, row[len(agent_fields) :])
    Agent._meta.get_field("project").set_cached_value(agent, project)  # type: ignore[union-attr]
    return agent


@cache
def _token_lookup(vendor: str) -> tuple[str, Columns, Columns]:
    q = connection.ops.quote_name
    agent_columns, agent_fields = select_list(Agent, "a")
    project_columns, project_fields = select_list(Project, "p")
    sql = (
        f"SELECT {agent_columns}, {project_columns} FROM {q(Agent._meta.db_table)} a"
        f" LEFT OUTER JOIN {q(Project._meta.db_table)} p ON p.id = a.project_id"
        " WHERE a.token_hash = %s"
    )
    return sql, agent_fields, project_fields


def agent_touch(*, agent: Agent) -> bool:
    """Every agent call renews its heartbeat and the lease of the tasks it holds.

    Written at most every TOUCH_INTERVAL: leases and the offline cut-off are minutes long, so a
    few seconds' staleness changes nothing, and an agent's quick run of calls costs no writes.
    Returns whether it wrote. The heartbeat tool writes by itself instead (`agent_heartbeat`).
    """
    now = timezone.now()
    last = agent.last_heartbeat_at
    wrote = last is None or not (now - TOUCH_INTERVAL < last <= now)
    if wrote:
        _write_heartbeat(agent, now)
    if agent.status in (AgentStatus.OFFLINE, AgentStatus.STARTING):
        agent_set_status(agent=agent, status=_status_on_return(agent))
    return wrote


def _status_on_return(agent: Agent) -> str:
    """The status of an offline or starting agent that calls in."""
    return AgentStatus.BUSY if agent.current_task_id else AgentStatus.IDLE


@cache
def _take_task_sql(vendor: str) -> str:
    # Agent.objects.filter(pk=…).filter(Q(current_task__isnull=True) | Q(current_task=task))
    # .update(current_task=task, status=BUSY): on every claim; compiled once.
    q = connection.ops.quote_name
    return (
        f"UPDATE {q(Agent._meta.db_table)} SET current_task_id = %s, status = %s"
        " WHERE id = %s AND (current_task_id IS NULL OR current_task_id = %s)"
    )


@cache
def _heartbeat_sql(vendor: str) -> str:
    # Building the ORM's UPDATE cost more CPU than sending it, on every beat of every agent.
    q = connection.ops.quote_name
    return f"UPDATE {q(Agent._meta.db_table)} SET last_heartbeat_at = %s WHERE id = %s"


def _write_heartbeat(agent: Agent, now: datetime) -> tuple[list[int], datetime | None]:
    """The heartbeat's writes: the agent's time and its tasks' lease, as (held ids, new lease).

    Two lone UPDATEs, each committing by itself, in no transaction: they are independent and
    idempotent (a lease renewed without the heartbeat time, or the reverse, is still true), and
    a transaction costs three more round trips. The lease is None when a held task moved
    between the read and the renewal (it was not renewed: the caller reads what holds).
    """
    from tasks.services import task_ids_held_by, task_renew_lease_for_agent

    held = task_ids_held_by(agent)
    with connection.cursor() as cursor:  # Agent.objects.filter(pk=…).update(…), compiled once
        cursor.execute(
            _heartbeat_sql(connection.vendor),
            [connection.ops.adapt_datetimefield_value(now), agent.pk],
        )
    agent.last_heartbeat_at = now
    if not held:
        return held, None
    lease = now + settings.TASK_LEASE_DURATION
    renewed = task_renew_lease_for_agent(agent=agent, task_ids=held, expires_at=lease)
    return held, lease if renewed == len(held) else None


@transaction.atomic
def agent_set_status(*, agent: Agent, status: str, message: str | None = None) -> Agent:
    if status not in AgentStatus.values:
        raise errors.InvalidInput(
            f"status must be one of {', '.join(AgentStatus.values)}.",
            fields={"status": ["Unknown status."]},
        )
    if message is not None and (not isinstance(message, str) or len(message) > 500):
        raise errors.InvalidInput(
            "message must be text of at most 500 characters.",
            fields={"message": ["At most 500 characters."]},
        )
    fields = ["status"]
    agent.status = status
    if message is not None:
        agent.status_message = message
        fields.append("status_message")
    agent.save(update_fields=fields)
    _broadcast_status(agent)
    return agent


@dataclass(frozen=True)
class Heartbeat:
    agent: Agent
    task_id: int | None  # the first active task it holds (by id), if any
    lease_expires_at: datetime | None  # that task's renewed lease; None: read it again


def agent_heartbeat(
    *, agent: Agent, status: str | None = None, message: str | None = None
) -> Heartbeat:
    """The explicit heartbeat: always writes (unlike `agent_touch`), and sets the status.

    The status is saved (and broadcast) only when it or the message changes: a runner beats
    with the same "busy" and message every few seconds, which changes nothing on any board.
    """
    held, lease = _write_heartbeat(agent, timezone.now())
    if status is None and agent.status in (AgentStatus.OFFLINE, AgentStatus.STARTING):
        status = _status_on_return(agent)
    if (status is not None and status != agent.status) or (
        message is not None and message != agent.status_message
    ):
        agent_set_status(agent=agent, status=status or agent.status, message=message)
    return Heartbeat(agent=agent, task_id=held[0] if held else None, lease_expires_at=lease)


def agent_sync_current_task(*, agent: Agent, task: Any) -> None:
    """Keep `agent.current_task` and busy/idle in step with the task the transition changed."""
    if task.is_active and task.assigned_agent_id == agent.pk:
        # The claim's path: one conditional UPDATE does what lock + check + save would.
        with connection.cursor() as cursor:
            cursor.execute(
                _take_task_sql(connection.vendor), [task.pk, AgentStatus.BUSY, agent.pk, task.pk]
            )
            taken = cursor.rowcount
        if taken:
            agent.current_task, agent.status = task, AgentStatus.BUSY
            _broadcast_status(
                agent, project_ids=sorted({task.project_id, agent.project_id} - {None})
            )
        return
    locked = Agent.objects.select_for_update().get(pk=agent.pk)
    if task.is_active and task.assigned_agent_id == locked.pk:
        if locked.current_task_id in (None, task.pk):
            locked.current_task = task
            locked.status = AgentStatus.BUSY
    elif locked.current_task_id == task.pk:
        locked.current_task = None
        locked.status = AgentStatus.IDLE if locked.status != AgentStatus.OFFLINE else locked.status
    else:
        return
    locked.save(update_fields=["current_task", "status"])
    agent.current_task, agent.status = locked.current_task, locked.status
    # The board that shows this change is the task's (and a restricted agent's own project).
    _broadcast_status(locked, project_ids=sorted({task.project_id, locked.project_id} - {None}))


def agent_mark_stale_offline(*, now: Any = None) -> list[int]:
    """Watchdog: agents silent for AGENT_OFFLINE_AFTER go offline and give their tasks back."""
    from tasks.models import Task
    from tasks.services import task_transition
    from tasks.states import ACTIVE_STATES, TaskState

    now = now or timezone.now()
    cutoff = now - settings.AGENT_OFFLINE_DURATION
    # An agent that never called in counts from its creation, unless it is still starting (a
    # pod pulling its image is not offline yet).
    never_called = Q(last_heartbeat_at__isnull=True, created_at__lt=cutoff) & ~Q(
        status=AgentStatus.STARTING
    )
    stale = list(
        Agent.objects.exclude(status=AgentStatus.OFFLINE)
        .filter(Q(last_heartbeat_at__lt=cutoff) | never_called)
        .values_list("pk", flat=True)
    )
    for agent_id in stale:
        with transaction.atomic():
            agent = Agent.objects.select_for_update().get(pk=agent_id)
            last_seen = agent.last_heartbeat_at
            if (last_seen or agent.created_at) >= cutoff or (
                last_seen is None and agent.status == AgentStatus.STARTING
            ):
                continue  # called in, or was created, since we looked
            agent.status = AgentStatus.OFFLINE
            agent.status_message = (
                f"No heartbeat since {last_seen.isoformat()}" if last_seen else "Never called in"
            )
            agent.save(update_fields=["status", "status_message"])
            _broadcast_status(agent)
        for task_id in Task.objects.filter(
            assigned_agent_id=agent_id, state__in=ACTIVE_STATES
        ).values_list("pk", flat=True):
            try:
                task_transition(
                    task_id=task_id,
                    to_state=TaskState.BACKLOG,
                    actor=Actor.system("agent watchdog"),
                    note=f"Agent {agent.name} went offline "
                    f"(no heartbeat for {settings.AGENT_OFFLINE_AFTER}).",
                )
            except errors.DomainError:
                continue  # moved meanwhile; nothing to release
    return stale
