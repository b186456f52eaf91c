"""A local pull request reviewed in a real browser (Debian's Chromium, Playwright) against daphne.

The agent's side is real too: the MCP client at the same daphne's /mcp claims the task, makes
its branch, opens the pull request and completes the task; git pushes over the platform's smart
HTTP with the agent's token. A person then sees the diff on the task page and requests changes,
and the agent's get_feedback returns them; its next push updates the pull request.
"""

import pytest
from playwright.sync_api import expect

from projects.models import Membership, PullRequest
from tasks.models import Task
from tasks.states import TaskState
from tests import factories
from tests.board.live_server import start_daphne
from tests.browser import launched_chromium, signed_in_context
from tests.forges.conftest import bearer, commit_file, git
from tests.mcpbridge.conftest import call, http_client, run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WAIT_MS = 10_000


async def agent_opens_a_pull_request(mcp_url, token, project, checkout, git_url):
    async with http_client(mcp_url, token) as client:
        failed, claimed = await call(client, "get_next_task", project=project.slug)
        assert not failed, claimed
        task_id = claimed["task"]["id"]
        failed, branch = await call(client, "create_branch", task_id=task_id)
        assert not failed, branch
        name = branch["branch"]
        git(*bearer(token), "clone", "--quiet", git_url, str(checkout))
        git("checkout", "--quiet", name, cwd=checkout)
        commit_file(checkout, "greet.py", "def greet(name):\n    return 'Hello ' + name\n", "greet")
        git(*bearer(token), "push", "--quiet", "origin", name, cwd=checkout)
        failed, pr = await call(client, "create_pull_request", task_id=task_id)
        assert not failed, pr
        failed, done = await call(client, "complete_task", task_id=task_id, summary="Greets.")
        assert not failed, done
        return task_id


async def agent_reads_feedback(mcp_url, token, task_id):
    async with http_client(mcp_url, token) as client:
        first = await call(client, "get_feedback", task_id=task_id)
        again = await call(client, "get_feedback", task_id=task_id)
        return first, again


def test_a_reviewer_requests_changes_on_the_diff_and_the_agent_gets_them(
    local_project, tmp_path, settings, deploys
):
    settings.PROJECT_DEFAULT_ROLE = ""
    url, _ = start_daphne()
    agent, token = factories.make_agent(project=local_project)
    factories.make_task(project=local_project, title="Greet people")
    reviewer = factories.make_user(username="rita")
    Membership.objects.create(project=local_project, user=reviewer, role="member")
    checkout = tmp_path / "work"
    git_url = f"{url}/git/{local_project.slug}.git"

    task_id = run(agent_opens_a_pull_request(f"{url}/mcp", token, local_project, checkout, git_url))
    assert Task.objects.get(pk=task_id).state == TaskState.READY_TO_TEST

    with launched_chromium() as browser:
        context = signed_in_context(browser, url, reviewer, timeout_ms=WAIT_MS)
        page = context.new_page()
        page.goto(f"/projects/{local_project.slug}/tasks/{task_id}/")
        section = page.locator("#pull-request")
        expect(section.locator("h2")).to_contain_text("Pull request #1")
        expect(section.locator(".pr-commits")).to_contain_text("greet")
        expect(section.locator(".pr-files")).to_contain_text("greet.py")
        expect(section.locator(".pr-files .diff-add")).to_have_text("+2")
        added = section.locator("pre.diff .dl-add", has_text="def greet(name):")
        expect(added).to_be_visible()
        # Syntax-neutral highlighting: an added line has its own background.
        assert added.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(230, 255, 236)"

        section.locator("#pr-review-body").fill("Say 'Hello, <name>!' with a comma.")
        section.locator("#pr-request-changes").click()

        page.wait_for_load_state()
        expect(page.locator(".messages")).to_contain_text(
            "Changes requested; the task is back with its agent."
        )
        expect(page.locator(".pr-comment.k-changes_requested")).to_contain_text(
            "Say 'Hello, <name>!' with a comma."
        )
        context.close()

    task = Task.objects.get(pk=task_id)
    assert (task.state, task.assigned_agent_id) == (TaskState.IN_PROGRESS, agent.pk)
    (failed, first), (_, again) = run(agent_reads_feedback(f"{url}/mcp", token, task_id))
    assert not failed, first
    assert [(f["source"], f["author"], f["body"]) for f in first["feedback"]] == [
        ("person", "rita", "[changes requested] Say 'Hello, <name>!' with a comma.")
    ]
    assert again["feedback"] == []  # each item once

    # The agent's next push updates the pull request, through the push path.
    sha = commit_file(checkout, "greet.py", "def greet(name):\n    return f'Hello, {name}!'\n")
    git(*bearer(token), "push", "--quiet", "origin", task.branch_name, cwd=checkout)
    assert PullRequest.objects.get().head_sha == sha == Task.objects.get(pk=task_id).head_sha
    assert deploys[-1] == {"task_id": task_id, "commit_sha": sha}
