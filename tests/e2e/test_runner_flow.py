"""The whole flow with a real runner process (SPEC §11, issue 7).

Stand-ins, because these cannot run here: the agent CLI (tests/e2e/fake_agent.py edits a file
and commits), Gitea (tests/contract/standin.py behind Prism, which validates every request and
answer against Gitea's API description), and the project's Git server (a local bare
repository the runner reaches through git's `url.<bare>.insteadOf=<Gitea clone URL>`).
Everything else is real: the MCP server over streamable HTTP, the runner as a subprocess
talking to it with the mcp client, git, the gitops driver committing manifests to a bare repo.

Here the task is created, approved, merged and promoted through the same services the board's
views call; tests/e2e/test_browser_flow.py does those steps in a real browser on a live board.
"""

import contextlib
import os
import signal
import time
from datetime import timedelta

import pytest

from agents import jobs as agent_jobs
from agents.models import AgentStatus
from aiworker.actors import Actor
from deployments.models import Deployment
from deployments.releases import release_merge_to_staging, release_promote
from tasks.models import Task, TaskEvent
from tasks.services import task_approve, task_create
from tasks.states import TaskState
from tests import factories
from tests.e2e.conftest import OWNER, REPO, git

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 90.0


def wait_for(predicate, what: str, runner=None, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    log = runner.output() if runner else ""
    raise AssertionError(f"timed out waiting for {what}\n--- runner log ---\n{log}")


def state_of(task: Task) -> str:
    return Task.objects.values_list("state", flat=True).get(pk=task.pk)


@pytest.fixture
def shop(gitea, settings, tmp_path):
    settings.DEPLOY_DRIVER = "gitops"
    settings.GITOPS_REPO_URL = str(tmp_path / "gitops.git")
    settings.PREVIEW_DOMAIN = "preview.example.test"
    return factories.make_project(
        gitea_owner=OWNER, gitea_repo=REPO, image_repository="registry.example.test/acme/shop"
    )


def test_task_goes_from_backlog_to_production_through_the_runner(
    shop, gitea, start_runner, project_repo, approver, tmp_path
):
    task = task_create(
        project=shop,
        title="Add a changelog",
        description="Keep a CHANGES.md.",
        actor=Actor.of_user(approver),
    )
    agent, token = factories.make_agent(project=shop)
    runner = start_runner(token)

    wait_for(lambda: state_of(task) == TaskState.READY_TO_TEST, "ready_to_test", runner)

    task.refresh_from_db()
    branch = task.branch_name
    assert branch.startswith(f"task/{task.pk}-")
    # The branch on the project's repository carries the stand-in agent's commit.
    log = git("--git-dir", str(project_repo), "log", "--format=%s", branch)
    assert log.splitlines()[0] == f"Stand-in agent work on task {task.pk}"
    head = git("--git-dir", str(project_repo), "rev-parse", branch)
    assert task.head_sha == head
    assert "CHANGES.md" in git("--git-dir", str(project_repo), "ls-tree", "--name-only", branch)
    # Gitea saw the branch and one PR from it.
    assert branch in gitea.repos[(OWNER, REPO)].branches
    pulls = gitea.repos[(OWNER, REPO)].pulls
    assert len(pulls) == 1 and task.pr_number == pulls[0]["number"]
    # The gitops preview of that commit.
    preview = Deployment.objects.get(task=task, environment="preview")
    assert preview.commit_sha == head and preview.status == "ready"
    assert task.preview_url == f"http://task-{task.pk}.preview.example.test" or task.preview_url
    assert f"preview/preview-task-{task.pk}" in git(
        "--git-dir", str(tmp_path / "gitops.git"), "ls-tree", "-r", "--name-only", "main"
    )
    # The prompt carried the task; the .mcp.json never reached the repository.
    prompt = (tmp_path / "runner" / f"prompt-{task.pk}.txt").read_text()
    assert "Add a changelog" in prompt and "Keep a CHANGES.md." in prompt
    assert ".mcp.json" not in git(
        "--git-dir", str(project_repo), "ls-tree", "-r", "--name-only", branch
    )
    # The timeline: claimed by the agent, progress lines, completed by the agent.
    kinds = list(TaskEvent.objects.filter(task=task).values_list("kind", "to_state"))
    assert ("status_changed", TaskState.IN_PROGRESS) in kinds
    assert ("status_changed", TaskState.READY_TO_TEST) in kinds
    assert TaskEvent.objects.filter(task=task, kind="progress", actor_agent=agent).count() >= 2
    assert token not in runner.output()

    # SIGTERM while idle: the runner stops cleanly.
    assert runner.stop(signal.SIGTERM) == 0

    # A person approves, merges to staging and promotes to production.
    actor = Actor.of_user(approver)
    task_approve(task_id=task.pk, actor=actor)
    release = release_merge_to_staging(task_ids=[task.pk], actor=actor)
    assert state_of(task) == TaskState.STAGING
    release_promote(release_id=release.pk, actor=actor)
    assert state_of(task) == TaskState.PRODUCTION
    agent.refresh_from_db()
    assert agent.current_task is None


def test_killed_runner_task_returns_and_another_runner_finishes_it(
    shop, gitea, start_runner, settings, tmp_path
):
    task = task_create(project=shop, title="Fix the footer", actor=factories.system())
    first, first_token = factories.make_agent(project=shop, name="first")
    second, second_token = factories.make_agent(project=shop, name="second")
    marker = tmp_path / "hanging.pid"
    doomed = start_runner(first_token, agent_args=f"--hang {marker}", name="doomed")

    wait_for(marker.exists, "the first runner's agent to start", doomed)
    task.refresh_from_db()
    assert task.state == TaskState.IN_PROGRESS and task.assigned_agent == first

    doomed.stop(signal.SIGKILL)  # no chance to release anything
    with contextlib.suppress(ProcessLookupError):  # the orphaned stand-in agent
        os.kill(int(marker.read_text()), signal.SIGKILL)
    assert state_of(task) == TaskState.IN_PROGRESS  # still held, until the watchdog says

    settings.AGENT_OFFLINE_DURATION = timedelta(seconds=2)
    wait_for(lambda: agent_jobs.mark_stale_agents_offline() == 1, "the watchdog", timeout=30)
    task.refresh_from_db()
    first.refresh_from_db()
    assert task.state == TaskState.BACKLOG and task.assigned_agent is None
    assert first.status == AgentStatus.OFFLINE

    settings.AGENT_OFFLINE_DURATION = timedelta(seconds=90)
    runner = start_runner(second_token, name="second")
    wait_for(lambda: state_of(task) == TaskState.READY_TO_TEST, "ready_to_test", runner)
    task.refresh_from_db()
    assert task.assigned_agent == second and task.attempt_count == 2

    # Never two holders: every claim follows a release, by the watchdog, of the first agent.
    moves = list(
        TaskEvent.objects.filter(task=task, kind="status_changed")
        .order_by("created_at", "id")
        .values_list("to_state", "actor_kind", "actor_agent_id")
    )
    assert moves[:3] == [
        (TaskState.IN_PROGRESS, "agent", first.pk),
        (TaskState.BACKLOG, "system", None),
        (TaskState.IN_PROGRESS, "agent", second.pk),
    ]
    runner.stop()
