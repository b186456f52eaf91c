"""What happens outside the task row when a task changes state: one table, one place.

Two kinds of effect, so that this app never imports the apps above it (STYLE: floors):
- `AFTER_TRANSITION` names Celery jobs (by their registered names) started after commit with
  `task_id`. Jobs are idempotent; in the embedded default they run in-process.
- In-transaction handlers, registered by the apps above at start-up (agents keeps an agent's
  current task and status in step): they run inside the transition's transaction, so the
  agent row and the task row commit together.
"""

import logging
from collections.abc import Callable
from typing import Any

from aiworker.jobs import start_job

logger = logging.getLogger(__name__)

# (from_state or "*", to_state) -> names of the jobs to start.
AFTER_TRANSITION: dict[tuple[str, str], list[str]] = {
    # A preview lives until its change is merged to staging or the task is cancelled; the
    # production entry is a second chance for one whose destroy failed (the job is idempotent).
    ("*", "cancelled"): ["deployments.jobs.destroy_preview"],
    ("*", "staging"): ["deployments.jobs.destroy_preview"],
    ("*", "production"): ["deployments.jobs.destroy_preview"],
}

# handler(task=<the task, already saved>, agent=<the agent that held it during the move>)
TransitionHandler = Callable[..., None]
_in_transaction_handlers: list[TransitionHandler] = []


def on_transition(handler: TransitionHandler) -> TransitionHandler:
    """Register `handler` to run inside every transition of a task that had an agent."""
    if handler not in _in_transaction_handlers:
        _in_transaction_handlers.append(handler)
    return handler


def in_transaction(*, task: Any, agent: Any) -> None:
    for handler in _in_transaction_handlers:
        handler(task=task, agent=agent)


def after_transition(*, task_id: int, from_state: str, to_state: str) -> None:
    names = AFTER_TRANSITION.get((from_state, to_state), []) + AFTER_TRANSITION.get(
        ("*", to_state), []
    )
    for name in names:
        try:
            start_job(name, task_id=task_id)
        except Exception:
            # The transition is committed; a job that cannot be queued is logged and picked up
            # by the reconciling beat jobs.
            logger.exception("could not start %s for task %s", name, task_id)
