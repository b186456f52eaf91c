"""The task state machine (SPEC §5): the states and the one transition table."""

from django.db import models


class TaskState(models.TextChoices):
    BACKLOG = "backlog", "Backlog"
    IN_PROGRESS = "in_progress", "In progress"
    NEEDS_INPUT = "needs_input", "Needs input"
    READY_TO_TEST = "ready_to_test", "Ready to test"
    APPROVED = "approved", "Approved"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    CANCELLED = "cancelled", "Cancelled"


S = TaskState

# from-state -> the states it may move to. Anything not listed is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.BACKLOG: frozenset({S.IN_PROGRESS, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.NEEDS_INPUT, S.READY_TO_TEST, S.BACKLOG, S.CANCELLED}),
    S.NEEDS_INPUT: frozenset({S.IN_PROGRESS, S.BACKLOG, S.CANCELLED}),
    S.READY_TO_TEST: frozenset({S.APPROVED, S.IN_PROGRESS, S.CANCELLED}),
    S.APPROVED: frozenset({S.READY_TO_TEST, S.STAGING, S.CANCELLED}),
    S.STAGING: frozenset({S.PRODUCTION}),
    S.PRODUCTION: frozenset(),
    S.CANCELLED: frozenset({S.BACKLOG}),
}

# States in which a task is held by an agent (it has a lease that must be renewed).
ACTIVE_STATES = frozenset({S.IN_PROGRESS, S.NEEDS_INPUT})
# A dependency counts as met once the task it depends on reached one of these.
DEPENDENCY_MET_STATES = frozenset({S.STAGING, S.PRODUCTION})
# Transitions an agent may make itself through `update_task_status`.
AGENT_TRANSITIONS = frozenset(
    {
        (S.IN_PROGRESS, S.NEEDS_INPUT),
        (S.IN_PROGRESS, S.READY_TO_TEST),
        (S.IN_PROGRESS, S.BACKLOG),
        (S.NEEDS_INPUT, S.BACKLOG),
    }
)


def allowed_targets(from_state: str) -> frozenset[str]:
    return TRANSITIONS.get(from_state, frozenset())


def is_allowed(from_state: str, to_state: str) -> bool:
    return to_state in allowed_targets(from_state)
