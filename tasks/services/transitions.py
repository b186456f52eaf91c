"""The one place a task changes state (SPEC §5).

Every path into a new state ends in `move_checked`: it checks the transition table and the
rules on the locked row (dependencies, open questions, WIP limits, the holder of an active
task), then `_apply_transition` writes the row, exactly one TaskEvent, and the broadcasts and
effects that start after commit. The public doors in front of it:

- `task_transition`: a plain move by a person (board, REST, admin) or an agent
  (`update_task_status`). It refuses the moves only the release services make ("Use Merge to
  staging") and the move only an agent's question makes.
- `task_release_transition`: the release services, once the forge merge and the deploy
  succeeded (approved -> staging, staging -> production, production -> staging on rollback).
- claims, questions and requested changes (tasks/services/claims.py, conversation.py).
"""

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from aiworker import errors, live
from aiworker.actors import Actor
from projects import roles
from projects.models import Project
from tasks import effects, rules
from tasks.models import Task, TaskEvent
from tasks.services.validation import clean_text
from tasks.states import (
    ACTIVE_STATES,
    AGENT_TRANSITIONS,
    RELEASE_TRANSITIONS,
    SERVICE_TRANSITIONS,
    TaskState,
    allowed_targets,
    is_allowed,
    plain_move_targets,
)

S = TaskState
# Permission (per project, projects/roles.py) a user needs for a plain move; moves not listed
# need EDIT_TASK_PERMISSION.
EDIT_TASK_PERMISSION = "tasks.edit_task"
TRANSITION_PERMISSIONS: dict[tuple[str, str], str] = {
    (S.READY_TO_TEST, S.APPROVED): "tasks.approve_task",
}
# The release services' moves need these (checked there, before any merge runs).
RELEASE_PERMISSIONS: dict[tuple[str, str], str] = {
    (S.APPROVED, S.STAGING): "tasks.approve_task",
    (S.STAGING, S.PRODUCTION): "deployments.promote_release",
    (S.PRODUCTION, S.STAGING): "deployments.promote_release",
}


def lock_task(task_id: Any) -> Task:
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise errors.InvalidInput(
            "task_id must be an integer.", fields={"task_id": ["Not an integer."]}
        )
    try:
        return (
            Task.objects.select_for_update()
            .select_related("project", "assigned_agent")
            .get(pk=task_id)
        )
    except Task.DoesNotExist:
        raise errors.NotFound(f"Task {task_id} does not exist.") from None


def task_data(task: Task) -> dict[str, Any]:
    """The compact card data a live event carries."""
    return {
        "id": task.pk,
        "project": task.project_id,
        "title": task.title,
        "state": task.state,
        "priority": task.priority,
        "labels": task.label_list,
        "position": task.position,
        "agent": task.assigned_agent.name
        if task.assigned_agent_id and task.assigned_agent
        else None,
        "pr_url": task.pr_url,
        "preview_url": task.preview_url,
        "updated_at": task.updated_at.isoformat() if task.updated_at else None,
    }


def record_event(
    *,
    task: Task,
    kind: str,
    actor: Actor,
    message: str = "",
    from_state: str = "",
    to_state: str = "",
    payload: dict[str, Any] | None = None,
) -> TaskEvent:
    return TaskEvent.objects.create(
        task=task,
        kind=kind,
        from_state=from_state,
        to_state=to_state,
        message=message,
        payload=payload or {},
        **actor.event_fields,
    )


# --- the rules --------------------------------------------------------------------------------


def _check_rules(*, task: Task, from_state: str, to_state: str, holder: Any) -> None:
    if from_state == S.BACKLOG and to_state == S.IN_PROGRESS:
        blockers = rules.unmet_dependencies(task)
        if blockers:
            names = ", ".join(f"#{t.pk} ({t.state})" for t in blockers)
            raise errors.Conflict(
                f"Task {task.pk} depends on tasks not yet in staging or production: {names}."
            )
    if from_state == S.NEEDS_INPUT and to_state == S.IN_PROGRESS:
        open_count = task.questions.filter(answered_at__isnull=True).count()
        if open_count:
            raise errors.Conflict(
                f"Task {task.pk} still has {open_count} open question(s); answer them first."
            )
    limit = task.project.wip_limit(to_state)
    # Asking or answering a question: the task stays held, it takes no new WIP slot.
    if limit is not None and not (from_state in ACTIVE_STATES and to_state in ACTIVE_STATES):
        # Lock the project row so two concurrent moves cannot both take the last WIP slot.
        Project.objects.select_for_update().filter(pk=task.project_id).first()
        if not rules.wip_allows(project_id=task.project_id, wip_limit=limit, state=to_state):
            raise errors.Conflict(
                f"The '{to_state}' column of {task.project.name} is at its WIP limit of {limit}."
            )
    _check_holder(task=task, from_state=from_state, to_state=to_state, holder=holder)


def _check_holder(*, task: Task, from_state: str, to_state: str, holder: Any) -> None:
    """A task is active only with a holder that may hold it (SPEC §5)."""
    if to_state not in ACTIVE_STATES:
        return
    if holder is None:
        raise errors.Conflict(
            f"Task {task.pk} needs an agent to work on it: name the agent that starts it."
        )
    if from_state not in ACTIVE_STATES or holder.pk != task.assigned_agent_id:
        # Lock the agent's row: two moves cannot both give it its last free slot.
        holder = rules.agent_model().objects.select_for_update().get(pk=holder.pk)
        why = rules.holder_refusal(agent=holder, task=task)
        if why:
            raise errors.Conflict(f"Task {task.pk} cannot start: {why}")


def move_checked(
    *,
    task: Task,
    to_state: str,
    actor: Actor,
    holder: Any = None,
    note: str = "",
    position: int | None = None,
    payload: dict[str, Any] | None = None,
    also_save: Sequence[str] = (),
) -> Task:
    """Check the table and every rule on the locked `task`, then apply the move.

    `holder`: the agent that holds the task once it is active; by default its current holder.
    """
    from_state = task.state
    if not is_allowed(from_state, to_state):
        raise errors.TransitionNotAllowed(
            task_id=task.pk,
            from_state=from_state,
            to_state=to_state,
            allowed=allowed_targets(from_state),
        )
    if holder is None and task.assigned_agent_id:
        holder = task.assigned_agent
    _check_rules(task=task, from_state=from_state, to_state=to_state, holder=holder)
    if to_state in ACTIVE_STATES and task.assigned_agent_id != holder.pk:
        task.assigned_agent = holder
        if from_state not in ACTIVE_STATES:
            task.attempt_count += 1
        also_save = (*also_save, "assigned_agent", "attempt_count")
    return _apply_transition(
        task=task,
        to_state=to_state,
        actor=actor,
        note=note,
        position=position,
        payload=payload,
        also_save=also_save,
    )


def _apply_transition(
    *,
    task: Task,
    to_state: str,
    actor: Actor,
    note: str = "",
    position: int | None = None,
    payload: dict[str, Any] | None = None,
    also_save: Sequence[str] = (),
) -> Task:
    """Write a transition already checked on a locked row. Only tasks/services calls it.

    `also_save`: fields the caller changed on the row, written in the same UPDATE.
    """
    from_state = task.state
    now = timezone.now()
    fields = ["state", "state_changed_at", "updated_at", "position", "lease_expires_at"]
    fields += [f for f in also_save if f not in fields]
    agent = task.assigned_agent if task.assigned_agent_id else None

    task.lease_expires_at = (
        now + settings.TASK_LEASE_DURATION if to_state in ACTIVE_STATES and agent else None
    )
    if to_state in (S.BACKLOG, S.CANCELLED):
        task.assigned_agent = None
        if "assigned_agent" not in fields:
            fields.append("assigned_agent")

    task.state = to_state
    task.state_changed_at = now
    task.position = position if position is not None else _next_position(task.project_id, to_state)
    task.save(update_fields=fields)

    if agent is not None:
        effects.in_transaction(task=task, agent=agent)

    record_event(
        task=task,
        kind="status_changed",
        actor=actor,
        message=note,
        from_state=from_state,
        to_state=to_state,
        payload=payload,
    )
    data = {**task_data(task), "from_state": from_state, "to_state": to_state}
    live.broadcast_on_commit(project_id=task.project_id, event="task.status_changed", data=data)
    if to_state == S.NEEDS_INPUT:
        live.broadcast_on_commit(project_id=task.project_id, event="task.needs_input", data=data)
    if to_state == S.READY_TO_TEST:
        live.broadcast_on_commit(project_id=task.project_id, event="task.ready_to_test", data=data)
    transaction.on_commit(
        lambda: effects.after_transition(task_id=task.pk, from_state=from_state, to_state=to_state)
    )
    return task


def _next_position(project_id: int, state: str) -> int:
    top = Task.objects.filter(project_id=project_id, state=state).aggregate(m=Max("position"))["m"]
    return 0 if top is None else top + 1


# --- the doors ----------------------------------------------------------------------------------


def _check_actor_may(*, actor: Actor, task: Task, from_state: str, to_state: str) -> None:
    if actor.kind == "agent":
        assert actor.agent is not None
        if task.assigned_agent_id != actor.agent.pk:
            raise errors.PermissionDenied(
                f"Task {task.pk} is not assigned to agent {actor.agent.name}."
            )
        if (from_state, to_state) not in AGENT_TRANSITIONS:
            allowed = sorted(t for f, t in AGENT_TRANSITIONS if f == from_state)
            raise errors.TransitionNotAllowed(
                task_id=task.pk, from_state=from_state, to_state=to_state, allowed=allowed
            )
        return
    hint = SERVICE_TRANSITIONS.get((from_state, to_state))
    if hint:
        raise errors.TransitionNotAllowed(
            task_id=task.pk,
            from_state=from_state,
            to_state=to_state,
            allowed=plain_move_targets(from_state),
            hint=hint,
        )
    # A person needs the project's edit right for any move; webhooks and the system do not.
    default = EDIT_TASK_PERMISSION if actor.kind == "user" else None
    perm = TRANSITION_PERMISSIONS.get((from_state, to_state), default)
    if perm and not actor.has_perm(perm, task.project_id):
        raise errors.PermissionDenied(
            f"Moving a task from '{from_state}' to '{to_state}' needs the permission '{perm}'"
            f" (role '{roles.needed_role(perm)}' in the project)."
        )


def _named_agent(agent_id: Any) -> Any:
    if isinstance(agent_id, bool) or not isinstance(agent_id, int):
        raise errors.InvalidInput(
            "agent must be an agent id.", fields={"agent": ["Not an integer."]}
        )
    agent = rules.agent_model().objects.filter(pk=agent_id).first()
    if agent is None:
        raise errors.InvalidInput(
            f"Agent {agent_id} does not exist.", fields={"agent": ["Unknown agent."]}
        )
    return agent


@transaction.atomic
def task_transition(
    *,
    task_id: int,
    to_state: str,
    actor: Actor,
    note: str = "",
    position: int | None = None,
    expected_from: str | None = None,
    payload: dict[str, Any] | None = None,
    agent_id: int | None = None,
) -> Task:
    """A plain move, or a domain error and nothing changed.

    `agent_id`: the agent a person names when starting a task (backlog -> in progress).
    """
    if to_state not in S.values:
        raise errors.InvalidInput(
            f"Unknown state '{to_state}'. States: {', '.join(S.values)}.",
            fields={"to_state": [f"Choose from {', '.join(S.values)}."]},
        )
    note = clean_text(note, field="note")
    holder = _named_agent(agent_id) if agent_id is not None else None
    task = lock_task(task_id)
    from_state = task.state
    if expected_from is not None and from_state != expected_from:
        raise errors.Conflict(f"Task {task.pk} is '{from_state}', not '{expected_from}'.")
    if not is_allowed(from_state, to_state):
        raise errors.TransitionNotAllowed(
            task_id=task.pk,
            from_state=from_state,
            to_state=to_state,
            allowed=plain_move_targets(from_state),
        )
    action = RELEASE_TRANSITIONS.get((from_state, to_state))
    if action:
        raise errors.TransitionNotAllowed(
            task_id=task.pk,
            from_state=from_state,
            to_state=to_state,
            allowed=plain_move_targets(from_state),
            hint=f"Only a release moves a task there: use {action}.",
        )
    _check_actor_may(actor=actor, task=task, from_state=from_state, to_state=to_state)
    if holder is not None and from_state in ACTIVE_STATES and holder.pk != task.assigned_agent_id:
        raise errors.Conflict(
            f"Task {task.pk} is held by another agent; release it before naming a new one."
        )
    return move_checked(
        task=task,
        to_state=to_state,
        actor=actor,
        holder=holder,
        note=note,
        position=position,
        payload=payload,
    )


@transaction.atomic
def task_release_transition(
    *, task_id: int, to_state: str, release_id: int, actor: Actor, note: str = ""
) -> Task:
    """A release's move (merge to staging, promote, roll back), made by the release services
    only after the forge merge and the deploy driver reported success."""
    task = lock_task(task_id)
    if (task.state, to_state) not in RELEASE_TRANSITIONS:
        raise errors.TransitionNotAllowed(
            task_id=task.pk,
            from_state=task.state,
            to_state=to_state,
            allowed=[t for f, t in RELEASE_TRANSITIONS if f == task.state],
        )
    return move_checked(
        task=task,
        to_state=to_state,
        actor=actor,
        note=note,
        payload={"release_id": release_id},
    )


def task_release(*, task_id: int, actor: Actor, reason: str) -> Task:
    """Give an active task back to the backlog (agent gives up, lease expired, requeue)."""
    reason = clean_text(reason, field="reason", required=True)
    return task_transition(task_id=task_id, to_state=S.BACKLOG, actor=actor, note=reason)


def task_approve(*, task_id: int, actor: Actor, note: str = "") -> Task:
    return task_transition(
        task_id=task_id, to_state=S.APPROVED, actor=actor, note=note, expected_from=S.READY_TO_TEST
    )
