"""A test-only Celery job, loaded into the worker with `-I tests.faults.crash_jobs`.

It is shaped like the project's jobs: takes an id, loads fresh state, and makes its effect
idempotent with a conditional UPDATE, so a redelivered run after a crash changes nothing twice.
It notes each start in a directory so the test knows when to kill the worker mid-job.
"""

import os
import time
from pathlib import Path

from celery import shared_task
from django.db import transaction

from tasks.models import Task, TaskEvent


@shared_task(name="tests.faults.crash_effect")
def crash_effect(*, task_id: int, marker_dir: str, sleep_seconds: float) -> bool:
    Path(marker_dir, f"start-{os.getpid()}-{time.time_ns()}").touch()
    time.sleep(sleep_seconds)
    with transaction.atomic():
        changed = Task.objects.filter(pk=task_id, branch_name="").update(
            branch_name=f"task/{task_id}-crash"
        )
        if changed:
            TaskEvent.objects.create(
                task_id=task_id, kind="branch_created", actor_kind="system", message="crash test"
            )
    Path(marker_dir, f"done-{os.getpid()}-{time.time_ns()}").touch()
    return bool(changed)
