"""A Celery worker killed with SIGKILL mid-job: the job is delivered again (acks_late, the
broker's visibility timeout) to another worker and has exactly one effect.

Real parts: two `celery -A aiworker worker` processes, an own redis-server as broker, and the
MariaDB test database (SQLite's test database is not shared with another process)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from tasks.models import TaskEvent
from tests import factories

pytestmark = [pytest.mark.mariadb, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def _worker(redis_url: str, name: str) -> subprocess.Popen:
    cfg = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"mysql://{cfg['USER']}@{cfg['HOST'] or '127.0.0.1'}:"
        f"{cfg['PORT'] or 3306}/{cfg['NAME']}",
        "REDIS_URL": redis_url,
        "CELERY_VISIBILITY_TIMEOUT": "3",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "aiworker",
            "worker",
            "-I",
            "tests.faults.crash_jobs",
            "-c",
            "1",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_job_of_a_killed_worker_runs_again_with_one_effect(own_redis, project, tmp_path):
    task = factories.make_task(project=project)
    sender = Celery(broker=own_redis.url)
    first = _worker(own_redis.url, "first")
    second = None
    try:
        sender.send_task(
            "tests.faults.crash_effect",
            kwargs={"task_id": task.pk, "marker_dir": str(tmp_path), "sleep_seconds": 3},
        )
        _wait_for(lambda: list(tmp_path.glob("start-*")), 60, "the first worker to start")
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool child, mid-sleep
        first.wait(timeout=10)
        assert not list(tmp_path.glob("done-*"))
        assert TaskEvent.objects.filter(task=task, kind="branch_created").count() == 0

        second = _worker(own_redis.url, "second")
        _wait_for(lambda: list(tmp_path.glob("done-*")), 90, "the job to run again and finish")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
    assert len(list(tmp_path.glob("start-*"))) == 2
    task.refresh_from_db()
    assert task.branch_name == f"task/{task.pk}-crash"
    assert TaskEvent.objects.filter(task=task, kind="branch_created").count() == 1
