"""Claiming: an agent gets its active task, or atomically the next claimable one (SPEC §6
`get_next_task`), and every agent call renews the leases of what it holds."""

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from aiworker import errors
from aiworker.actors import Actor
from projects.models import Project
from tasks import claim_queries, rules
from tasks.models import Task
from tasks.services.transitions import _apply_transition, lock_task, move_checked
from tasks.states import ACTIVE_STATES, TaskState

logger = logging.getLogger(__name__)

S = TaskState
DEADLOCK_RETRIES = 5
# Candidates read per round by a claim (see _lock_first_claimable).
CLAIM_BATCH = 8


def _is_deadlock(exc: OperationalError) -> bool:
    code = exc.args[0] if exc.args else None
    return code in (1213, 1205)  # MariaDB deadlock, lock wait timeout


def task_claim_next(
    *,
    agent: Any,
    project: Project | None = None,
    answer: Callable[[Task], Any] | None = None,
) -> Any:
    """Give `agent` its active task, or atomically claim the next claimable one, or None.

    `answer`: builds what the caller sends back from the claimed task, inside the claim's
    transaction, so a claim whose answer cannot be built is rolled back instead of leaving the
    task held by an agent that was told nothing. The result is `answer(task)` (or the task).

    A deadlock reported by MariaDB under concurrent SKIP LOCKED claims is retried here, so the
    agent never sees it (STACK.md: 3–5 in 3,000 claims).
    """
    for attempt in range(DEADLOCK_RETRIES):
        try:
            with transaction.atomic():
                task = _claim_once(agent=agent, project=project)
                return answer(task) if answer is not None and task is not None else task
        except OperationalError as exc:
            if not _is_deadlock(exc) or attempt == DEADLOCK_RETRIES - 1:
                raise
            logger.info("claim deadlock for agent %s, retry %d", agent.pk, attempt + 1)
            time.sleep(random.uniform(0.001, 0.01) * (attempt + 1))
    return None  # unreachable; the loop returns or raises


def _claim_once(*, agent: Any, project: Project | None) -> Task | None:
    if agent.project_id and project is not None and project.pk != agent.project_id:
        raise errors.PermissionDenied(
            f"Agent {agent.name} may only work on project '{agent.project.slug}'."
        )
    scope = Task.objects.all()
    scope_project_id = project.pk if project is not None else agent.project_id
    if scope_project_id is not None:
        scope = scope.filter(project_id=scope_project_id)

    # Find the agent's own tasks (in any project: the AGENT_MAX_ACTIVE rule counts them all)
    # without locking, then lock one row: a locking read here may scan rows other claimers
    # hold (deadlocks), and on MariaDB a join in a locking read locks the project row too (no
    # `OF`), serialising every claim of the project.
    held = claim_queries.held_task_ids(agent.pk)  # `rules.held_task_ids`, built once
    own_id = held[0] if len(held) >= settings.AGENT_MAX_ACTIVE else None
    own = (
        Task.objects.select_for_update()
        .filter(pk=own_id, assigned_agent=agent, state__in=ACTIVE_STATES)
        .first()
        if own_id is not None
        else None
    )
    if own is not None:
        own.lease_expires_at = timezone.now() + settings.TASK_LEASE_DURATION
        own.save(update_fields=["lease_expires_at"])
        return own

    excluded_projects: list[int] = []
    while True:
        task = _lock_first_claimable(
            project_id=scope_project_id, excluded_projects=excluded_projects
        )
        if task is None:
            return None
        if project is not None and task.project_id == project.pk:
            task.project = project  # the row we were given: no need to read it again
        limit = task.project.wip_limit(S.IN_PROGRESS)
        if limit is not None:
            Project.objects.select_for_update().filter(pk=task.project_id).first()
            if not rules.wip_allows(
                project_id=task.project_id, wip_limit=limit, state=S.IN_PROGRESS
            ):
                excluded_projects.append(task.project_id)
                continue
        task.assigned_agent = agent
        task.attempt_count += 1
        return _apply_transition(
            task=task,
            to_state=S.IN_PROGRESS,
            actor=Actor.of_agent(agent),
            note=f"Claimed by {agent.name} (attempt {task.attempt_count})",
            # The in-progress column sorts by priority, then position: the backlog position
            # keeps claim order there without a MAX() over the column on every claim.
            position=task.position,
            payload={"attempt": task.attempt_count},
            also_save=("assigned_agent", "attempt_count"),
        )


def _lock_first_claimable(*, project_id: int | None, excluded_projects: list[int]) -> Task | None:
    """Lock and return the first claimable task in claim order (of `project_id`, or of any
    project but `excluded_projects`) that no one else is claiming, or None.

    One locking `SELECT … ORDER BY … LIMIT 1 FOR UPDATE SKIP LOCKED` cannot do this on MariaDB:
    the claim order has no matching index, so it sorts, and the sort reads (and locks) every
    claimable row until commit — every concurrent claimer then skips them all and answers
    "nothing to claim" while tasks wait. So: read the first few candidates without locks, then
    lock them one at a time by primary key (one row each; SKIP LOCKED passes over a task
    another claimer holds) and check again that the locked row is still claimable.
    """
    tried: list[int] = []
    while True:
        ids = claim_queries.claimable_ids(
            project_id=project_id,
            exclude_ids=tried,
            exclude_project_ids=excluded_projects,
            limit=CLAIM_BATCH,
        )
        if not ids:
            return None
        for pk in ids:
            task = claim_queries.lock_backlog_task(pk)
            # Dependencies may have changed between the read and the lock (they are set under
            # this row's lock), so the rules are checked again on the locked row.
            if task is not None and claim_queries.is_ready(pk):
                return task
        # The whole batch was taken or is being taken: look further down the queue.
        tried.extend(ids)


def task_ids_held_by(agent: Any) -> list[int]:
    """The active tasks the agent holds, oldest first (a plain read: no locks)."""
    return claim_queries.held_task_ids(agent.pk)


def task_renew_lease_for_agent(
    *, agent: Any, task_ids: list[int] | None = None, expires_at: Any = None
) -> int:
    """Extend the lease of every active task the agent holds (any agent call does this).

    `task_ids`: what `task_ids_held_by` answered a moment ago, if the caller asked already;
    `expires_at`: the new lease (default: TASK_LEASE_DURATION from now).
    """
    ids = task_ids_held_by(agent) if task_ids is None else task_ids
    if not ids:
        return 0
    # Update by primary key. A WHERE on agent and state lets MariaDB walk the `state` index
    # and lock the index records of other agents' tasks, which deadlocked with their
    # transitions (seen with 32 agents). The state condition stays, so a task that moved
    # meanwhile is left alone.
    return claim_queries.renew_leases(
        agent_id=agent.pk,
        task_ids=ids,
        expires_at=expires_at or timezone.now() + settings.TASK_LEASE_DURATION,
    )


def task_release_expired_leases(*, now: Any = None) -> int:
    """Release every active task whose lease ran out. Called by the watchdog job."""
    now = now or timezone.now()
    expired = list(
        Task.objects.filter(state__in=ACTIVE_STATES, lease_expires_at__lt=now).values_list(
            "pk", flat=True
        )
    )
    released = 0
    for task_id in expired:
        with transaction.atomic():
            task = lock_task(task_id)
            # Renewed or moved since we looked: leave it alone.
            if (
                task.state not in ACTIVE_STATES
                or not task.lease_expires_at
                or task.lease_expires_at >= now
            ):
                continue
            holder = task.assigned_agent.name if task.assigned_agent else "its agent"
            move_checked(
                task=task,
                to_state=S.BACKLOG,
                actor=Actor.system("lease watchdog"),
                note=f"Lease expired: {holder} stopped renewing it.",
                payload={"lease_expired_at": task.lease_expires_at.isoformat()},
            )
            released += 1
    return released
