"""Starting a Celery job by its registered name: the one way services start jobs.

By name, because a job calls the services that start it: `deployments/jobs.py` imports
`deployments/services.py`, never the other way round, and a lower floor can start a job of a
higher one (a task's transition tears its preview down) without importing it (STYLE: floors).
Every app imports its `jobs` module when it is ready, so each name is registered in every
process; in the embedded default (`CELERY_TASK_ALWAYS_EAGER`) the job runs in the caller.
"""

from typing import Any

from django.db import transaction

from aiworker.celery import app


def start_job(name: str, **kwargs: Any) -> None:
    """Start the job now (KeyError for a name no app registered: a programming error)."""
    app.tasks[name].delay(**kwargs)


def start_job_on_commit(name: str, **kwargs: Any) -> None:
    """Start the job once the current transaction commits (at once outside one)."""
    job = app.tasks[name]  # fails here, in the caller's transaction, for an unknown name
    transaction.on_commit(lambda: job.delay(**kwargs))
