"""What happens outside the task row after a transition commits: one table, one place.

Each entry names a Celery job (by its registered name, so this module imports no integration)
that receives `task_id`. Jobs are idempotent; in the embedded default they run in-process.
"""

import logging

from aiworker.celery import app

logger = logging.getLogger(__name__)

# (from_state or "*", to_state) -> names of the jobs to start.
AFTER_TRANSITION: dict[tuple[str, str], list[str]] = {
    # A preview lives until its change is merged to staging or the task is cancelled; the
    # production entry is a second chance for one whose destroy failed (the job is idempotent).
    ("*", "cancelled"): ["deployments.jobs.destroy_preview"],
    ("*", "staging"): ["deployments.jobs.destroy_preview"],
    ("*", "production"): ["deployments.jobs.destroy_preview"],
}


def after_transition(*, task_id: int, from_state: str, to_state: str) -> None:
    names = AFTER_TRANSITION.get((from_state, to_state), []) + AFTER_TRANSITION.get(
        ("*", to_state), []
    )
    for name in names:
        try:
            app.tasks[name].delay(task_id=task_id)
        except Exception:
            # The transition is committed; a job that cannot be queued is logged and picked up
            # by the reconciling beat jobs.
            logger.exception("could not start %s for task %s", name, task_id)
