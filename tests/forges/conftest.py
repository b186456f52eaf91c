"""Fixtures of the local forge's tests: real bare repositories under a temporary directory."""

import os
import subprocess
from pathlib import Path

import pytest

from projects.forges.local import LocalForge
from tasks.models import Task
from tasks.services import forge
from tasks.states import TaskState
from tests import factories

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "GIT_TERMINAL_PROMPT": "0",
}


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {args[0]} failed: {done.stderr}")
    return done


def bearer(token: str) -> list[str]:
    """git's options that send an agent's token, as the runner does."""
    return ["-c", f"http.extraHeader=Authorization: Bearer {token}"]


def commit_file(checkout: Path, name: str, text: str, message: str = "change") -> str:
    (checkout / name).write_text(text)
    git("add", name, cwd=checkout)
    git("commit", "--quiet", "-m", message, cwd=checkout)
    return git("rev-parse", "HEAD", cwd=checkout).stdout.strip()


def refs(repo: Path) -> str:
    return git("--git-dir", str(repo), "for-each-ref", "--format=%(refname) %(objectname)").stdout


@pytest.fixture
def local_project(db, tmp_path, settings):
    settings.VAR_DIR = tmp_path / "var"
    project = factories.make_project(forge="local", deploy_driver="local")
    LocalForge(project).ensure_repository()
    return project


@pytest.fixture
def seeded(local_project, tmp_path):
    """The local project's repository with an app.py on main, and a checkout of it."""
    repo = LocalForge(local_project).path
    checkout = tmp_path / "seed"
    git("clone", "--quiet", str(repo), str(checkout))
    commit_file(checkout, "app.py", "print('hello')\n", "app")
    for branch in ("main", "staging", "production"):
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", "--force", cwd=checkout)
    return repo, checkout


def task_with_pushed_branch(project, checkout: Path, *, title: str, files: dict, **fields) -> Task:
    """A task in progress whose branch (made by the platform) has a commit per file, pushed."""
    fields.setdefault("state", TaskState.IN_PROGRESS)
    task = factories.make_task(project=project, title=title, **fields)
    task = forge.task_create_branch(task_id=task.pk, actor=factories.system())
    git("fetch", "--quiet", "origin", cwd=checkout)
    git("checkout", "--quiet", "-B", task.branch_name, "origin/main", cwd=checkout)
    for name, text in files.items():
        commit_file(checkout, name, text, f"{title}: {name}")
    git("push", "--quiet", "origin", task.branch_name, cwd=checkout)
    return task


@pytest.fixture
def deploys(monkeypatch):
    """The preview deploy a push starts is the deployments app's to test; here it is counted."""
    from aiworker.celery import app
    from deployments import jobs  # noqa: F401 - registers the job

    calls: list[dict] = []
    # The object the push path calls (app.tasks[...]): a test that swapped Celery's current app
    # (tests/faults) leaves the `jobs.deploy_preview` proxy pointing elsewhere.
    job = app.tasks["deployments.jobs.deploy_preview"]
    monkeypatch.setattr(job, "delay", lambda **kw: calls.append(kw))
    return calls
