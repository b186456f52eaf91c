"""The local driver for real: run commands started from worktrees of real commits in a real bare
repository, on loopback ports, read back over HTTP; failures, expiry, GC and restarts."""

import os
import secrets
import signal
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from aiworker.actors import Actor
from deployments import services
from deployments.drivers.base import Place, driver_for
from deployments.drivers.local import LocalDriver
from deployments.models import Deployment, Environment, Release
from projects.forges.local import LocalForge
from tasks.models import Task, TaskEvent
from tests import factories
from tests.forges.conftest import commit_file, git

SYSTEM = Actor.system("test")


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@pytest.fixture
def local(db, tmp_path, settings):
    """A local-forge, local-driver project whose repository serves index.html on main, a
    checkout to commit from, and every started command stopped afterwards."""
    settings.VAR_DIR = tmp_path / "var"
    settings.LOCAL_DEPLOY_DIR = tmp_path / "var" / "local-deploys"
    settings.LOCAL_DEPLOY_READY_TIMEOUT = 20.0
    project = factories.make_project(forge="local", deploy_driver="local")
    repo = LocalForge(project).repo()
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(repo), str(checkout))
    sha = commit_file(checkout, "index.html", "version one\n", "first")
    for branch in ("main", "staging", "production"):
        git("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}", cwd=checkout)
    yield project, checkout, sha
    driver = LocalDriver.from_settings()
    driver.destroy([Place("", r.key, "") for r in driver.all_running()])


def push_task_commit(checkout: Path, task: Task, text: str) -> str:
    git("checkout", "--quiet", "-B", f"task/{task.pk}", "main", cwd=checkout)
    sha = commit_file(checkout, "index.html", text, f"task {task.pk}")
    git("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/task/{task.pk}", cwd=checkout)
    return sha


def in_progress(project, checkout, text: str) -> Task:
    task = factories.make_task(project=project, state="in_progress")
    task.head_sha = push_task_commit(checkout, task, text)
    task.save()
    return task


def preview_running(project, checkout, run_command: str | None = None) -> tuple[Task, Deployment]:
    """A task with a pushed commit and its preview deployed (with `run_command`, when given)."""
    if run_command is not None:
        project.run_command = run_command
        project.save()
    task = in_progress(project, checkout, "x\n")
    return task, services.preview_deploy(task_id=task.pk, actor=SYSTEM)


def test_preview_serves_the_task_commit_on_its_own_loopback_port(local):
    project, checkout, _ = local
    first = in_progress(project, checkout, "change of the first task\n")
    second = in_progress(project, checkout, "change of the second task\n")

    one = services.preview_deploy(task_id=first.pk, actor=SYSTEM)
    two = services.preview_deploy(task_id=second.pk, actor=SYSTEM)

    assert (one.status, two.status) == ("ready", "ready")
    assert one.url.startswith("http://127.0.0.1:") and one.url != two.url  # never one port
    assert fetch(one.url + "index.html") == "change of the first task\n"
    assert fetch(two.url + "index.html") == "change of the second task\n"
    first.refresh_from_db()
    assert first.preview_url == one.url
    assert one.driver == "local" and one.image == "" and one.commit_sha == first.head_sha
    assert TaskEvent.objects.filter(task=first, kind="deploy.completed").exists()


def test_a_new_push_redeploys_the_preview_with_the_new_commit(local):
    project, checkout, _ = local
    task = in_progress(project, checkout, "before\n")
    before = services.preview_deploy(task_id=task.pk, actor=SYSTEM)
    old = LocalDriver.from_settings().running(before.namespace)
    assert old is not None

    newer = commit_file(checkout, "index.html", "after\n", "second push")
    git("push", "--quiet", "origin", f"HEAD:refs/heads/task/{task.pk}", cwd=checkout)
    after = services.preview_deploy(task_id=task.pk, actor=SYSTEM, commit_sha=newer)

    assert after.pk == before.pk and after.status == "ready"
    assert fetch(after.url + "index.html") == "after\n"
    assert not LocalDriver.from_settings().is_alive(old)  # the old command was stopped


@pytest.mark.django_db(transaction=True)
def test_two_deploys_of_one_preview_at_once_end_with_one_running_command(local):
    """A push and the agent's trigger_preview_deploy ask for the same commit together."""
    project, checkout, _ = local
    task = in_progress(project, checkout, "once\n")
    place = Place("preview", f"preview-task-{task.pk}", project.slug, task.head_sha, task.pk)
    driver = LocalDriver.from_settings()
    with ThreadPoolExecutor(2) as pool:
        urls = list(pool.map(lambda _: driver.apply(place, []), range(2)))

    assert urls[0] == urls[1]
    assert fetch(urls[0] + "index.html") == "once\n"
    running = driver.running(place.namespace)
    assert running is not None and driver.is_alive(running)
    assert len([r for r in driver.all_running() if driver.is_alive(r)]) == 1


def test_a_proxy_in_the_platform_environment_is_not_asked_for_the_health_check(local, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    project, checkout, _ = local
    task = in_progress(project, checkout, "direct\n")

    assert services.preview_deploy(task_id=task.pk, actor=SYSTEM).status == "ready"


def test_a_command_that_exits_fails_the_preview_with_its_last_output(local):
    project, checkout, _ = local
    task, deployment = preview_running(
        project, checkout, "echo 'cannot bind: port {port} is mine'; exit 3"
    )

    assert deployment.status == "failed"
    assert "exited with code 3" in deployment.error
    assert "cannot bind: port" in deployment.error
    task.refresh_from_db()
    assert task.preview_url == ""  # never linked to something that does not answer
    event = TaskEvent.objects.get(task=task, kind="deploy.failed")
    assert "exited with code 3" in event.message


def test_a_command_that_never_answers_is_stopped_and_fails(local, settings):
    settings.LOCAL_DEPLOY_READY_TIMEOUT = 1.0
    project, checkout, _ = local
    _, deployment = preview_running(project, checkout, "echo listening soon; exec sleep 60")

    assert deployment.status == "failed"
    assert "did not answer within 1s" in deployment.error and "listening soon" in deployment.error
    running = LocalDriver.from_settings().running(deployment.namespace)
    assert running is not None and not LocalDriver.from_settings().is_alive(running)


def test_the_command_gets_no_platform_secret_in_its_environment(local, monkeypatch):
    # Random stand-ins: what matters is that they never reach the preview's environment.
    monkeypatch.setenv("DATABASE_URL", f"mysql://root:{secrets.token_hex(8)}@db/x")
    monkeypatch.setenv("SECRET_KEY", secrets.token_hex(16))
    project, checkout, _ = local
    project.run_command = "env > env.txt; python -m http.server {port}"
    project.preview_env = {"GREETING": "hello"}
    project.save()
    task = in_progress(project, checkout, "x\n")

    deployment = services.preview_deploy(task_id=task.pk, actor=SYSTEM)

    shown = fetch(deployment.url + "env.txt")
    assert "GREETING=hello" in shown and f"PORT={deployment.url.rsplit(':', 1)[1][:-1]}" in shown
    assert "DATABASE_URL" not in shown and "SECRET_KEY" not in shown


def test_expiry_stops_the_command_and_removes_the_worktree(local):
    project, checkout, _ = local
    task, deployment = preview_running(project, checkout)
    driver = LocalDriver.from_settings()
    running = driver.running(deployment.namespace)
    assert running is not None
    Deployment.objects.filter(pk=deployment.pk).update(expires_at="2000-01-01T00:00:00Z")

    assert services.previews_expire() == 1

    assert not driver.is_alive(running)
    assert not (driver.root / deployment.namespace).exists()
    worktrees = git("--git-dir", str(LocalForge(project).path), "worktree", "list").stdout
    assert deployment.namespace not in worktrees
    deployment.refresh_from_db()
    task.refresh_from_db()
    assert deployment.status == "expired" and task.preview_url == ""


def test_garbage_collection_removes_a_deleted_task_preview(local):
    project, checkout, _ = local
    task, deployment = preview_running(project, checkout)
    driver = LocalDriver.from_settings()
    running = driver.running(deployment.namespace)
    assert running is not None
    task.delete()

    assert services.resources_garbage_collect(safety_window=timedelta(0))

    assert not driver.is_alive(running) and not (driver.root / deployment.namespace).exists()


def test_restart_reconciles_unexplained_commands_and_dead_records(local):
    project, checkout, _ = local
    orphan_task = in_progress(project, checkout, "orphan\n")
    dying_task = in_progress(project, checkout, "dying\n")
    orphan = services.preview_deploy(task_id=orphan_task.pk, actor=SYSTEM)
    dying = services.preview_deploy(task_id=dying_task.pk, actor=SYSTEM)
    driver = LocalDriver.from_settings()
    orphan_run, dying_run = driver.running(orphan.namespace), driver.running(dying.namespace)
    assert orphan_run is not None and dying_run is not None
    # What a crash leaves: a command no record explains, and a record whose command died.
    Deployment.objects.filter(pk=orphan.pk).delete()
    os.killpg(dying_run.pid, signal.SIGKILL)
    for _ in range(100):
        if not driver.is_alive(dying_run):
            break
        time.sleep(0.05)

    assert services.local_deployments_reconcile() == (1, 1)

    assert not driver.is_alive(orphan_run) and not (driver.root / orphan.namespace).exists()
    dying.refresh_from_db()
    assert dying.status == "failed" and "stopped" in dying.error
    assert TaskEvent.objects.filter(task=dying_task, kind="deploy.failed").exists()
    assert services.local_deployments_reconcile() == (0, 0)  # nothing more to do


def test_staging_production_and_rollback_run_their_commits(local):
    project, checkout, first_sha = local
    driver = driver_for(project)
    assert driver.name == "local" and not driver.needs_image

    def release(environment: str, sha: str) -> Release:
        created = Release.objects.create(
            project=project, environment=environment, commit_sha=sha, status="deploying"
        )
        return services.release_deploy(release_id=created.pk)

    staging = release(Environment.STAGING, first_sha)
    first = release(Environment.PRODUCTION, first_sha)
    second_sha = commit_file(checkout, "index.html", "version two\n", "second")
    git("push", "--quiet", "origin", "HEAD:refs/heads/production", cwd=checkout)
    second = release(Environment.PRODUCTION, second_sha)
    first.refresh_from_db()
    assert (staging.status, first.status, second.status) == ("live", "superseded", "live")
    production = Deployment.objects.filter(release=second).get()
    assert fetch(production.url + "index.html") == "version two\n"
    staged = Deployment.objects.filter(release=staging).get()
    assert fetch(staged.url + "index.html") == "version one\n" and staged.url != production.url

    restored = services.release_rollback(release_id=second.pk, actor=SYSTEM)

    assert restored.status == "live" and restored.commit_sha == first_sha
    live = Deployment.objects.filter(release=restored).get()
    assert fetch(live.url + "index.html") == "version one\n"
    second.refresh_from_db()
    assert second.status == "rolled_back"


def test_a_project_without_a_run_command_fails_clearly(local):
    project, checkout, _ = local
    _, deployment = preview_running(project, checkout, "  ")

    assert deployment.status == "failed" and "has no run command" in deployment.error
