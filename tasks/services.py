"""Every write to a task goes through here (STYLE: fat services, one place per concern).

`task_transition` is the one service that changes a task's state: it locks the row, checks the
transition table and the rules, writes exactly one TaskEvent and broadcasts after commit.
`task_claim_next` is the same transition (backlog -> in_progress) found with SKIP LOCKED.
"""

import logging
import random
import time
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import Max
from django.utils import timezone

from aiworker import errors, live
from aiworker.actors import Actor
from projects.models import Project
from tasks import claim_queries, effects, rules
from tasks.models import Priority, Task, TaskEvent, TaskFeedback, TaskQuestion
from tasks.states import ACTIVE_STATES, AGENT_TRANSITIONS, TaskState, allowed_targets, is_allowed

logger = logging.getLogger(__name__)

S = TaskState
SPEC_FIELDS = (
    "spec_goals",
    "spec_context",
    "spec_architecture",
    "spec_edge_cases",
    "spec_acceptance_criteria",
    "spec_complexity",
)
# Permission a user needs for a transition; transitions not listed need only a login.
TRANSITION_PERMISSIONS: dict[tuple[str, str], str] = {
    (S.READY_TO_TEST, S.APPROVED): "tasks.approve_task",
    (S.APPROVED, S.STAGING): "tasks.approve_task",
    (S.STAGING, S.PRODUCTION): "deployments.promote_release",
}
DEADLOCK_RETRIES = 5
# Candidates read per round by a claim (see _lock_first_claimable).
CLAIM_BATCH = 8


# --- validation shared by every write ---------------------------------------------------------


def clean_text(
    value: Any, *, field: str, required: bool = False, max_length: int | None = None
) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise errors.InvalidInput(f"{field} must be text.", fields={field: ["Must be a string."]})
    max_length = max_length or settings.TEXT_FIELD_MAX
    if required and not value.strip():
        raise errors.InvalidInput(
            f"{field} is required.", fields={field: ["This field is required."]}
        )
    if len(value) > max_length:
        message = f"Ensure this field has no more than {max_length} characters."
        raise errors.InvalidInput(
            f"{field} is too long (max {max_length}).", fields={field: [message]}
        )
    return value.strip() if field == "title" else value


def clean_priority(value: Any) -> int:
    if isinstance(value, str) and value.lower() in {p.label.lower() for p in Priority}:
        return next(p.value for p in Priority if p.label.lower() == value.lower())
    if isinstance(value, bool) or not isinstance(value, int) or value not in Priority.values:
        allowed = ", ".join(f"{p.value} ({p.label.lower()})" for p in Priority)
        raise errors.InvalidInput(
            f"priority must be one of {allowed}.", fields={"priority": [f"Choose from {allowed}."]}
        )
    return value


def _lock_task(task_id: Any) -> Task:
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise errors.InvalidInput(
            "task_id must be an integer.", fields={"task_id": ["Not an integer."]}
        )
    try:
        return Task.objects.select_for_update().select_related("project").get(pk=task_id)
    except Task.DoesNotExist:
        raise errors.NotFound(f"Task {task_id} does not exist.") from None


def _task_data(task: Task) -> dict[str, Any]:
    """The compact card data a live event carries."""
    return {
        "id": task.pk,
        "project": task.project_id,
        "title": task.title,
        "state": task.state,
        "priority": task.priority,
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


# --- the transition ---------------------------------------------------------------------------


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
    perm = TRANSITION_PERMISSIONS.get((from_state, to_state))
    if perm and not actor.has_perm(perm):
        raise errors.PermissionDenied(
            f"Moving a task from '{from_state}' to '{to_state}' needs the permission '{perm}'."
        )


def _check_rules(*, task: Task, from_state: str, to_state: str) -> None:
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
    if limit is not None:
        # Lock the project row so two concurrent moves cannot both take the last WIP slot.
        Project.objects.select_for_update().filter(pk=task.project_id).first()
        if not rules.wip_allows(project_id=task.project_id, wip_limit=limit, state=to_state):
            raise errors.Conflict(
                f"The '{to_state}' column of {task.project.name} is at its WIP limit of {limit}."
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
    """Write a transition already checked on a locked row. Only this module calls it.

    `also_save`: fields the caller changed on the row, written in the same UPDATE.
    """
    from agents import services as agent_services  # agents depends on tasks, not the reverse

    from_state = task.state
    now = timezone.now()
    fields = ["state", "state_changed_at", "updated_at", "position", *also_save]
    agent = task.assigned_agent if task.assigned_agent_id else None

    if to_state in ACTIVE_STATES:
        task.lease_expires_at = now + settings.TASK_LEASE_DURATION if agent else None
        fields.append("lease_expires_at")
    else:
        task.lease_expires_at = None
        fields.append("lease_expires_at")
    if to_state in (S.BACKLOG, S.CANCELLED):
        task.assigned_agent = None
        fields.append("assigned_agent")

    task.state = to_state
    task.state_changed_at = now
    task.position = position if position is not None else _next_position(task.project_id, to_state)
    task.save(update_fields=fields)

    if agent is not None:
        agent_services.agent_sync_current_task(agent=agent, task=task)

    record_event(
        task=task,
        kind="status_changed",
        actor=actor,
        message=note,
        from_state=from_state,
        to_state=to_state,
        payload=payload,
    )
    data = {**_task_data(task), "from_state": from_state, "to_state": to_state}
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
) -> Task:
    """Move a task to `to_state`, or raise a domain error and change nothing."""
    if to_state not in S.values:
        raise errors.InvalidInput(
            f"Unknown state '{to_state}'. States: {', '.join(S.values)}.",
            fields={"to_state": [f"Choose from {', '.join(S.values)}."]},
        )
    note = clean_text(note, field="note")
    task = _lock_task(task_id)
    from_state = task.state
    if expected_from is not None and from_state != expected_from:
        raise errors.Conflict(f"Task {task.pk} is '{from_state}', not '{expected_from}'.")
    if not is_allowed(from_state, to_state):
        raise errors.TransitionNotAllowed(
            task_id=task.pk,
            from_state=from_state,
            to_state=to_state,
            allowed=allowed_targets(from_state),
        )
    _check_actor_may(actor=actor, task=task, from_state=from_state, to_state=to_state)
    _check_rules(task=task, from_state=from_state, to_state=to_state)
    return _apply_transition(
        task=task, to_state=to_state, actor=actor, note=note, position=position, payload=payload
    )


# --- claiming ---------------------------------------------------------------------------------


def _is_deadlock(exc: OperationalError) -> bool:
    code = exc.args[0] if exc.args else None
    return code in (1213, 1205)  # MariaDB deadlock, lock wait timeout


def task_claim_next(*, agent: Any, project: Project | None = None) -> Task | None:
    """Give `agent` its active task, or atomically claim the next claimable one, or None.

    A deadlock reported by MariaDB under concurrent SKIP LOCKED claims is retried here, so the
    agent never sees it (STACK.md: 3–5 in 3,000 claims).
    """
    for attempt in range(DEADLOCK_RETRIES):
        try:
            with transaction.atomic():
                return _claim_once(agent=agent, project=project)
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

    # Find the agent's own task without locking, then lock that one row: a locking read here
    # may scan rows other claimers hold (deadlocks), and on MariaDB a join in a locking read
    # locks the project row too (no `OF`), serialising every claim of the project.
    own_id = (
        scope.filter(assigned_agent=agent, state__in=ACTIVE_STATES)
        .order_by("id")
        .values_list("pk", flat=True)
        .first()
    )
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


def task_release(*, task_id: int, actor: Actor, reason: str) -> Task:
    """Give an active task back to the backlog (agent gives up, lease expired, requeue)."""
    reason = clean_text(reason, field="reason", required=True)
    return task_transition(task_id=task_id, to_state=S.BACKLOG, actor=actor, note=reason)


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
            task = _lock_task(task_id)
            # Renewed or moved since we looked: leave it alone.
            if (
                task.state not in ACTIVE_STATES
                or not task.lease_expires_at
                or task.lease_expires_at >= now
            ):
                continue
            _apply_transition(
                task=task,
                to_state=S.BACKLOG,
                actor=Actor.system("lease watchdog"),
                note="Lease expired: the agent stopped renewing it.",
                payload={"lease_expired_at": task.lease_expires_at.isoformat()},
            )
            released += 1
    return released


def task_ids_held_by(agent: Any) -> list[int]:
    """The active tasks the agent holds (a plain read: no locks)."""
    held = Task.objects.filter(assigned_agent=agent, state__in=ACTIVE_STATES)
    return list(held.values_list("pk", flat=True))


def task_renew_lease_for_agent(*, agent: Any, task_ids: list[int] | None = None) -> int:
    """Extend the lease of every active task the agent holds (any agent call does this).

    `task_ids`: what `task_ids_held_by` answered a moment ago, if the caller asked already.
    """
    held = Task.objects.filter(assigned_agent=agent, state__in=ACTIVE_STATES)
    ids = task_ids_held_by(agent) if task_ids is None else task_ids
    if not ids:
        return 0
    # Update by primary key. A WHERE on agent and state lets MariaDB walk the `state` index
    # and lock the index records of other agents' tasks, which deadlocked with their
    # transitions (seen with 32 agents). The state condition stays, so a task that moved
    # meanwhile is left alone.
    return held.filter(pk__in=ids).update(
        lease_expires_at=timezone.now() + settings.TASK_LEASE_DURATION
    )


# --- creating and editing ---------------------------------------------------------------------


@transaction.atomic
def task_create(
    *,
    project: Project,
    title: Any,
    actor: Actor,
    description: Any = "",
    priority: Any = Priority.MEDIUM,
    parent_id: int | None = None,
    depends_on_ids: Sequence[int] = (),
    spec: dict[str, Any] | None = None,
) -> Task:
    title = clean_text(title, field="title", required=True, max_length=settings.TASK_TITLE_MAX)
    description = clean_text(description, field="description")
    priority = clean_priority(priority)
    parent = None
    if parent_id is not None:
        parent = Task.objects.filter(pk=parent_id, project=project).first()
        if parent is None:
            raise errors.InvalidInput(
                f"Parent task {parent_id} does not exist in project {project.slug}.",
                fields={"parent": ["Unknown task in this project."]},
            )
    spec_values = _clean_spec(spec or {})
    task = Task.objects.create(
        project=project,
        title=title,
        description=description,
        priority=priority,
        parent=parent,
        position=_next_position(project.pk, S.BACKLOG),
        created_by=actor.user,
        **spec_values,
    )
    if depends_on_ids:
        _set_dependencies(task=task, depends_on_ids=depends_on_ids)
    record_event(task=task, kind="created", actor=actor, to_state=task.state, message=title)
    live.broadcast_on_commit(project_id=project.pk, event="task.created", data=_task_data(task))
    return task


def _clean_spec(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - {f.removeprefix("spec_") for f in SPEC_FIELDS}
    if unknown:
        raise errors.InvalidInput(
            f"Unknown specification fields: {', '.join(sorted(unknown))}.",
            fields={name: ["Unknown field."] for name in sorted(unknown)},
        )
    cleaned = {f"spec_{k}": clean_text(v, field=k) for k, v in spec.items()}
    complexity = cleaned.get("spec_complexity")
    if complexity and complexity not in ("small", "medium", "large"):
        raise errors.InvalidInput(
            "complexity must be small, medium or large.",
            fields={"complexity": ["Choose from small, medium, large."]},
        )
    return cleaned


@transaction.atomic
def task_update(
    *,
    task_id: int,
    actor: Actor,
    title: Any = None,
    description: Any = None,
    priority: Any = None,
    spec: dict[str, Any] | None = None,
) -> Task:
    task = _lock_task(task_id)
    changed: dict[str, Any] = {}
    if title is not None:
        changed["title"] = clean_text(
            title, field="title", required=True, max_length=settings.TASK_TITLE_MAX
        )
    if description is not None:
        changed["description"] = clean_text(description, field="description")
    if priority is not None:
        changed["priority"] = clean_priority(priority)
    if spec:
        changed.update(_clean_spec(spec))
    changed = {k: v for k, v in changed.items() if getattr(task, k) != v}
    if not changed:
        return task
    for name, value in changed.items():
        setattr(task, name, value)
    task.save(update_fields=[*changed, "updated_at"])
    record_event(task=task, kind="edited", actor=actor, payload={"fields": sorted(changed)})
    live.broadcast_on_commit(
        project_id=task.project_id, event="task.updated", data=_task_data(task)
    )
    return task


@transaction.atomic
def task_set_dependencies(*, task_id: int, depends_on_ids: Sequence[int], actor: Actor) -> Task:
    task = _lock_task(task_id)
    _set_dependencies(task=task, depends_on_ids=depends_on_ids)
    record_event(
        task=task,
        kind="dependencies_changed",
        actor=actor,
        payload={"depends_on": sorted(set(depends_on_ids))},
    )
    live.broadcast_on_commit(
        project_id=task.project_id, event="task.updated", data=_task_data(task)
    )
    return task


def _set_dependencies(*, task: Task, depends_on_ids: Iterable[int]) -> None:
    ids = set(depends_on_ids)
    if any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
        raise errors.InvalidInput(
            "depends_on must be task ids.", fields={"depends_on": ["Not integers."]}
        )
    known = set(
        Task.objects.filter(pk__in=ids, project_id=task.project_id).values_list("pk", flat=True)
    )
    if ids - known:
        missing = ", ".join(str(i) for i in sorted(ids - known))
        raise errors.InvalidInput(
            f"Unknown tasks in this project: {missing}.",
            fields={"depends_on": [f"Unknown: {missing}."]},
        )
    edges = [e for e in rules.project_dependency_edges(task.project_id) if e[0] != task.pk]
    edges += [(task.pk, dep) for dep in ids]
    cycle = rules.find_cycle(edges)
    if cycle:
        path = " -> ".join(f"#{i}" for i in cycle)
        raise errors.InvalidInput(
            f"These dependencies would make a cycle: {path}.",
            fields={"depends_on": [f"Cycle: {path}."]},
        )
    task.depends_on.set(ids)


# --- timeline, questions and feedback ---------------------------------------------------------


@transaction.atomic
def task_log_progress(*, task_id: int, actor: Actor, message: Any) -> TaskEvent:
    message = clean_text(message, field="message", required=True)
    task = _lock_task(task_id)
    if actor.kind == "agent" and actor.agent and task.assigned_agent_id != actor.agent.pk:
        raise errors.PermissionDenied(
            f"Task {task.pk} is not assigned to agent {actor.agent.name}."
        )
    event = record_event(task=task, kind="progress", actor=actor, message=message)
    live.broadcast_on_commit(
        project_id=task.project_id,
        event="task.updated",
        data={**_task_data(task), "progress": message, "actor": actor.label},
    )
    return event


@transaction.atomic
def question_ask(*, task_id: int, agent: Any, question: Any, options: Any = None) -> TaskQuestion:
    question = clean_text(question, field="question", required=True)
    options = options or []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise errors.InvalidInput(
            "options must be a list of strings.", fields={"options": ["List of strings."]}
        )
    if len(options) > 20 or any(len(o) > 500 for o in options):
        raise errors.InvalidInput(
            "At most 20 options of 500 characters.", fields={"options": ["Too many or too long."]}
        )
    task = _lock_task(task_id)
    if task.assigned_agent_id != agent.pk:
        raise errors.PermissionDenied(f"Task {task.pk} is not assigned to agent {agent.name}.")
    if task.state not in ACTIVE_STATES:
        raise errors.Conflict(
            f"Task {task.pk} is '{task.state}'; questions are asked while in progress."
        )
    item = TaskQuestion.objects.create(task=task, agent=agent, question=question, options=options)
    payload = {"question_id": item.pk, "options": options}
    actor = Actor.of_agent(agent)
    if task.state == S.IN_PROGRESS:
        _apply_transition(
            task=task, to_state=S.NEEDS_INPUT, actor=actor, note=question, payload=payload
        )
    else:
        record_event(
            task=task, kind="question_asked", actor=actor, message=question, payload=payload
        )
        live.broadcast_on_commit(
            project_id=task.project_id, event="task.needs_input", data=_task_data(task)
        )
    return item


@transaction.atomic
def question_answer(
    *, question_id: Any, actor: Actor, answer: Any, task_id: int | None = None
) -> TaskQuestion:
    answer = clean_text(answer, field="answer", required=True)
    if isinstance(question_id, bool) or not isinstance(question_id, int):
        raise errors.InvalidInput(
            "question_id must be an integer.", fields={"question_id": ["Not an integer."]}
        )
    task_ref = TaskQuestion.objects.filter(pk=question_id).values_list("task_id", flat=True).first()
    if task_ref is None or (task_id is not None and task_ref != task_id):
        raise errors.NotFound(f"Question {question_id} does not exist on this task.")
    task = _lock_task(task_ref)
    item = TaskQuestion.objects.select_for_update().get(pk=question_id)
    if not item.is_open:
        raise errors.Conflict(f"Question {question_id} was already answered.")
    item.answer = answer
    item.answered_by = actor.user
    item.answered_at = timezone.now()
    item.save(update_fields=["answer", "answered_by", "answered_at"])
    record_event(
        task=task,
        kind="question_answered",
        actor=actor,
        message=answer,
        payload={"question_id": item.pk},
    )
    still_open = task.questions.filter(answered_at__isnull=True).exists()
    if task.state == S.NEEDS_INPUT and not still_open:
        _apply_transition(
            task=task,
            to_state=S.IN_PROGRESS,
            actor=actor,
            note="Every open question is answered.",
            payload={"question_id": item.pk},
        )
    else:
        live.broadcast_on_commit(
            project_id=task.project_id, event="task.updated", data=_task_data(task)
        )
    return item


@transaction.atomic
def task_request_changes(*, task_id: int, actor: Actor, feedback: Any) -> Task:
    feedback = clean_text(feedback, field="feedback", required=True)
    task = _lock_task(task_id)
    if task.state != S.READY_TO_TEST:
        raise errors.TransitionNotAllowed(
            task_id=task.pk,
            from_state=task.state,
            to_state=S.IN_PROGRESS,
            allowed=allowed_targets(task.state),
        )
    TaskFeedback.objects.create(
        task=task, source=TaskFeedback.Source.PERSON, author=actor.label, body=feedback
    )
    return _apply_transition(
        task=task, to_state=S.IN_PROGRESS, actor=actor, note=feedback, payload={"feedback": True}
    )


def task_approve(*, task_id: int, actor: Actor, note: str = "") -> Task:
    return task_transition(
        task_id=task_id, to_state=S.APPROVED, actor=actor, note=note, expected_from=S.READY_TO_TEST
    )


@transaction.atomic
def feedback_add(
    *,
    task_id: int,
    source: str,
    author: str,
    body: Any,
    external_id: str | None = None,
    actor: Actor,
) -> TaskFeedback | None:
    """Record review feedback once (a redelivered Gitea comment is ignored)."""
    body = clean_text(body, field="body", required=True)
    task = _lock_task(task_id)
    if (
        external_id
        and TaskFeedback.objects.filter(task=task, source=source, external_id=external_id).exists()
    ):
        return None
    item = TaskFeedback.objects.create(
        task=task, source=source, author=author[:150], body=body, external_id=external_id or None
    )
    record_event(
        task=task,
        kind="feedback",
        actor=actor,
        message=body,
        payload={"feedback_id": item.pk, "source": source, "author": author},
    )
    live.broadcast_on_commit(
        project_id=task.project_id,
        event="task.updated",
        data={**_task_data(task), "feedback": True},
    )
    return item


@transaction.atomic
def feedback_take_unseen(*, task_id: int, agent: Any) -> list[TaskFeedback]:
    """The feedback the agent has not read yet, marked as read."""
    task = _lock_task(task_id)
    if task.assigned_agent_id != agent.pk:
        raise errors.PermissionDenied(f"Task {task.pk} is not assigned to agent {agent.name}.")
    items = list(task.feedback.filter(seen_at__isnull=True).order_by("created_at", "id"))
    if items:
        TaskFeedback.objects.filter(pk__in=[i.pk for i in items]).update(seen_at=timezone.now())
    return items
