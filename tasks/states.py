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
    S.READY_TO_TEST: frozenset({S.APPROVED, S.IN_PROGRESS, S.BACKLOG, S.CANCELLED}),
    S.APPROVED: frozenset({S.READY_TO_TEST, S.STAGING, S.CANCELLED}),
    S.STAGING: frozenset({S.PRODUCTION}),
    S.PRODUCTION: frozenset({S.STAGING}),
    S.CANCELLED: frozenset({S.BACKLOG}),
}

# States in which a task is held by an agent (it has a lease that must be renewed).
ACTIVE_STATES = frozenset({S.IN_PROGRESS, S.NEEDS_INPUT})
# A dependency counts as met once the task it depends on reached one of these.
DEPENDENCY_MET_STATES = frozenset({S.STAGING, S.PRODUCTION})
# Moves only the release services make, after the forge merge and the deploy succeeded: each
# names the action that does it, for the message a plain move gets (SPEC §5).
RELEASE_TRANSITIONS: dict[tuple[str, str], str] = {
    (S.APPROVED, S.STAGING): "Merge to staging",
    (S.STAGING, S.PRODUCTION): "Promote",
    (S.PRODUCTION, S.STAGING): "Roll back",
}
# Moves that only one service makes, with what to do instead of a plain move.
SERVICE_TRANSITIONS: dict[tuple[str, str], str] = {
    (S.IN_PROGRESS, S.NEEDS_INPUT): "A task needs input when its agent asks a question.",
    # Requested changes go back to the agent that did the work when it is free, otherwise to
    # the backlog with the feedback attached (tasks.services.task_request_changes).
    (S.READY_TO_TEST, S.IN_PROGRESS): "Use Request changes, with the feedback for the agent.",
    (S.READY_TO_TEST, S.BACKLOG): "Use Request changes, with the feedback for the agent.",
}
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


def plain_move_targets(from_state: str) -> frozenset[str]:
    """Where a task may be moved by hand (board, REST, admin): the table less the moves that
    only the release services or one other service make."""
    return frozenset(
        t
        for t in allowed_targets(from_state)
        if (from_state, t) not in RELEASE_TRANSITIONS and (from_state, t) not in SERVICE_TRANSITIONS
    )
