"""The whole flow driven by a person in a real browser (SPEC §11, issue 7).

One in-process daphne (tests/board/live_server.py) serves the whole ASGI application: the
board, its WebSocket, the REST API the board's buttons call, and the MCP server at /mcp. The
runner subprocess (`python -m agents.runner`) talks to that /mcp, so its calls write to the
same test database and broadcast on the same in-memory channel layer as the board the person
has open: what the agent does shows up live.

Stand-ins, because these cannot run here: the agent CLI (tests/e2e/fake_agent.py edits a file
and commits), Gitea (tests/contract/standin.py behind Prism, which validates every request and
answer against Gitea's API description), and the project's Git server (a local bare
repository, see tests/e2e/conftest.py). Chromium (Debian's) is driven by Playwright.
"""

import os
import re
import signal
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from deployments.models import Deployment, Release
from tasks.models import Task, TaskEvent
from tasks.states import TaskState
from tests import factories
from tests.board.live_server import start_daphne
from tests.browser import launched_chromium
from tests.e2e.conftest import OWNER, REPO, git

S = TaskState
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Generous waits for "eventually": the runner clones, runs the agent, pushes, opens a PR and
# deploys a preview before the card moves; no speed is asserted here.
RUNNER_WAIT_MS = 120_000
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def live_url() -> str:
    url, _stop = start_daphne()  # the process's one server (Twisted cannot restart)
    return url


@pytest.fixture
def mcp_url(live_url) -> str:
    """Overrides the uvicorn MCP server of tests/mcpbridge: the runner uses the board's /mcp."""
    return f"{live_url}/mcp"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def shop(gitea, settings, tmp_path):
    settings.DEPLOY_DRIVER = "gitops"
    settings.GITOPS_REPO_URL = str(tmp_path / "gitops.git")
    settings.PREVIEW_DOMAIN = "preview.example.test"
    return factories.make_project(
        gitea_owner=OWNER, gitea_repo=REPO, image_repository="registry.example.test/acme/shop"
    )


def card_in(page: Page, state: str, task_id: int):
    return page.locator(f'.cards[data-state="{state}"] #task-{task_id}')


def state_of(task_id: int) -> str:
    return Task.objects.values_list("state", flat=True).get(pk=task_id)


def test_a_person_takes_a_task_from_the_browser_to_production(
    browser, live_url, shop, gitea, start_runner, project_repo, approver, artifacts_dir
):
    agent, token = factories.make_agent(project=shop, name="runner-1")
    context = browser.new_context(base_url=live_url, viewport={"width": 1700, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    try:
        # The person signs in with the login form and opens the board.
        board = context.new_page()
        board.goto(f"/projects/{shop.slug}/board/")
        assert "/login/" in board.url
        board.fill("#id_username", approver.username)
        board.fill("#id_password", "pw-for-tests")
        board.click("button[type=submit]")
        expect(board.locator("#board-root")).to_have_attribute("data-live", "open")
        # Marks this document: a reload or navigation would lose it.
        board.evaluate("window.__sameDocument = 'kept'")

        # A second tab: the board's "New task" form.
        form = context.new_page()
        form.goto(f"/projects/{shop.slug}/board/")
        form.click("text=New task")
        form.fill("#id_title", "Add a changelog")
        form.fill("#id_description", "Keep a CHANGES.md.")
        form.click("form.task-form button[type=submit]")  # not the top bar's Log out
        expect(form.locator(".messages")).to_contain_text("created in the backlog")
        match = re.search(r"/tasks/(\d+)/$", form.url)
        assert match, form.url
        task_id = int(match.group(1))
        assert Task.objects.filter(project=shop).count() == 1
        expect(card_in(board, "backlog", task_id)).to_be_visible()

        # The runner claims it, works, opens a PR and deploys a preview; the open board follows.
        runner = start_runner(token)
        try:
            expect(card_in(board, "ready_to_test", task_id)).to_be_visible(timeout=RUNNER_WAIT_MS)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- runner log ---\n{runner.output()}") from exc
        card = card_in(board, "ready_to_test", task_id)
        expect(card).to_contain_text("runner-1")
        assert board.evaluate("window.__sameDocument") == "kept"
        task = Task.objects.get(pk=task_id)
        expect(card.get_by_role("link", name=f"PR #{task.pr_number}")).to_have_attribute(
            "href", task.pr_url
        )
        expect(card.get_by_role("link", name="preview")).to_have_attribute("href", task.preview_url)

        assert task.assigned_agent == agent
        branch = task.branch_name
        assert branch.startswith(f"task/{task_id}-")
        log = git("--git-dir", str(project_repo), "log", "--format=%s", branch)
        assert log.splitlines()[0] == f"Stand-in agent work on task {task_id}"
        assert task.head_sha == git("--git-dir", str(project_repo), "rev-parse", branch)
        pulls = gitea.repos[(OWNER, REPO)].pulls
        assert [p["number"] for p in pulls] == [task.pr_number]
        preview = Deployment.objects.get(task=task, environment="preview")
        assert preview.commit_sha == task.head_sha and preview.status == "ready"
        board.screenshot(path=os.path.join(artifacts_dir, "e2e-ready-to-test.png"), full_page=True)
        assert runner.stop(signal.SIGTERM) == 0  # idle: stops cleanly
        assert token not in runner.output()

        # Approve on the task detail page.
        form.goto(f"/projects/{shop.slug}/tasks/{task_id}/")
        form.click("#approve")
        expect(form.locator(".messages")).to_be_visible()
        expect(card_in(board, "approved", task_id)).to_be_visible()
        assert state_of(task_id) == S.APPROVED

        # On the open board: tick the card, "Merge to staging", then "Promote".
        card_in(board, "approved", task_id).locator("input.select-task").check()
        board.click("button.merge-to-staging")
        expect(card_in(board, "staging", task_id)).to_be_visible()
        staging = Release.objects.get(project=shop, environment="staging")
        assert list(staging.tasks.values_list("pk", flat=True)) == [task_id]
        expect(board.locator("#board-root")).to_have_attribute(
            "data-staging-release", str(staging.pk)
        )
        board.click("button.promote")
        expect(card_in(board, "production", task_id)).to_be_visible()
        expect(board.locator('section.column[data-state="production"] .count')).to_have_text("1")
        for column in ("backlog", "in_progress", "ready_to_test", "approved", "staging"):
            expect(board.locator(f'section.column[data-state="{column}"] .count')).to_have_text("0")
        assert board.evaluate("window.__sameDocument") == "kept"
        expect(board.locator("#board-root")).to_have_attribute("data-live", "open")
        time.sleep(0.3)  # let the last redraw paint before the picture
        board.screenshot(path=os.path.join(artifacts_dir, "e2e-production.png"), full_page=True)
    finally:
        context.close()

    assert state_of(task_id) == S.PRODUCTION
    production = Release.objects.get(project=shop, environment="production")
    assert production.approved_by == approver
    assert list(production.tasks.values_list("pk", flat=True)) == [task_id]
    # Gitea saw the task's PR merged, then staging and production brought up to date.
    merges = [path for _m, path, _b in gitea.requests("POST", r"/merge$")]
    assert merges[0].endswith(f"/pulls/{task.pr_number}/merge"), merges
    assert len(merges) == 3, merges
    repo = gitea.repos[(OWNER, REPO)]
    merged = {p["number"]: (p["head"], p["base"], p["merged"]) for p in repo.pulls}
    assert merged[task.pr_number] == (branch, "main", True)
    assert ("main", "staging", True) in merged.values()
    assert ("staging", "production", True) in merged.values()
    # The timeline names who did what: the person approved, the agent worked, the releases
    # moved the task once deployed.
    moves = list(
        TaskEvent.objects.filter(task_id=task_id, kind="status_changed")
        .order_by("created_at", "id")
        .values_list("to_state", "actor_kind")
    )
    assert moves == [
        (S.IN_PROGRESS, "agent"),
        (S.READY_TO_TEST, "agent"),
        (S.APPROVED, "user"),
        # The release moves them, once its deploy reported success (SPEC §5).
        (S.STAGING, "system"),
        (S.PRODUCTION, "system"),
    ]
    agent.refresh_from_db()
    assert agent.current_task is None
