"""The runner tells an agent CLI that worked from one that never reached the platform.

Stand-ins as in tests/e2e/test_runner_flow.py (Gitea behind Prism, the project's bare
repository, tests/e2e/fake_agent.py for the CLI): with --offline the stand-in edits a file
without one MCP call, as a CLI with a wrong MCP configuration or token does (it exits 0).
"""

import pytest

from tasks.models import Task, TaskEvent
from tasks.services import task_create
from tasks.states import TaskState
from tests import factories
from tests.agent_cli.conftest import OWNER, REPO
from tests.e2e.test_runner_flow import state_of, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_cli_that_never_reached_the_platform_is_released_with_the_reason(
    gitea, start_runner, project_repo, settings
):
    project = factories.make_project(gitea_owner=OWNER, gitea_repo=REPO)
    task = task_create(project=project, title="Add a changelog", actor=factories.system())
    agent, token = factories.make_agent(project=project)
    runner = start_runner(token, agent_args="--offline")

    def released():
        return TaskEvent.objects.filter(
            task=task, to_state=TaskState.BACKLOG, message__contains="never connected"
        ).first()

    event = wait_for(released, "the release", runner)
    runner.stop()
    assert "check its MCP configuration" in event.message
    assert event.actor_agent == agent
    task.refresh_from_db()
    assert task.state in (TaskState.BACKLOG, TaskState.IN_PROGRESS)  # or claimed again
    assert not TaskEvent.objects.filter(task=task, to_state=TaskState.READY_TO_TEST).exists()
    assert state_of(task) != TaskState.READY_TO_TEST
    assert not Task.objects.filter(pk=task.pk, pr_number__isnull=False).exists()
    assert not gitea.repos[(OWNER, REPO)].pulls  # nothing pushed for review
