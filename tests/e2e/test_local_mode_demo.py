"""Local mode end to end, as a newcomer sees it after `make run` (issue 15): no Gitea, no
cluster, no Redis needed.

The demo as `make run` loads it (seed_demo: the demo project on the local forge and the local
driver, its repository seeded with the demo shop app), one in-process daphne serving the board,
/mcp and git's smart HTTP (tests/board/live_server.py), and the demo agent exactly as
`manage.py run_demo_agent` starts it: the real runner (`python -m agents.runner`, a subprocess)
with the scripted agent command agents/demo_agent.py. A person in Chromium creates a task,
answers the agent's question, reads the pull request's diff, opens the preview, approves,
merges to staging, promotes and rolls back; every URL is a real local process serving the
commit. Nothing is a stand-in except the agent's thinking (scripted, not an LLM).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import Browser, Page, expect

from agents.management.commands.run_demo_agent import runner_environment
from deployments.drivers.base import Place
from deployments.drivers.local import LocalDriver
from deployments.models import Deployment, Release
from tasks.models import Task
from tests.board.live_server import start_daphne
from tests.browser import launched_chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
RUNNER_WAIT_MS = 120_000
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def live_url() -> str:
    url, _stop = start_daphne()
    return url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def demo(live_url, settings, tmp_path, eager_jobs):
    """What `make run` sets up, in tmp_path; every local process stopped afterwards."""
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.LOCAL_DEPLOY_DIR = settings.VAR_DIR / "local-deploys"
    settings.LOCAL_DEPLOY_READY_TIMEOUT = 30.0
    settings.GITEA_URL = ""
    settings.PUBLIC_BASE_URL = live_url
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    yield json.loads((settings.VAR_DIR / "demo-credentials.json").read_text())
    driver = LocalDriver.from_settings()
    driver.destroy([Place("", r.key, "") for r in driver.all_running()])


@pytest.fixture
def eager_jobs():
    """With REDIS_URL set, jobs go to a broker no worker reads in tests: run them in-process."""
    from aiworker.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def demo_agent(demo, live_url, tmp_path) -> Iterator[tuple[subprocess.Popen, Path]]:
    env = runner_environment(
        base_url=live_url,
        token=demo["agent_token"],
        workdir=tmp_path / "demo-agent",
        poll_interval="0.3",
    )
    env = {k: v for k, v in env.items() if not k.startswith("GIT_CONFIG")}
    env["HEARTBEAT_INTERVAL"] = "1"
    log = tmp_path / "demo-agent.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agents.runner"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    yield proc, log
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def card_in(page: Page, state: str, task_id: int):
    return page.locator(f'.cards[data-state="{state}"] #task-{task_id}')


def served(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_a_newcomer_runs_the_whole_loop_locally(browser, live_url, demo, demo_agent, artifacts_dir):
    proc, log = demo_agent
    context = browser.new_context(base_url=live_url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(WAIT_MS)
    started = time.monotonic()
    try:
        # Sign in with the printed credentials; open the demo board.
        board = context.new_page()
        board.goto("/projects/demo/board/")
        board.fill("#id_username", "admin")
        board.fill("#id_password", demo["admin_password"])
        board.click("button[type=submit]")
        expect(board.locator("#board-root")).to_have_attribute("data-live", "open")

        # A new urgent task whose description asks the agent to ask one question.
        page = context.new_page()
        page.goto("/projects/demo/board/")
        page.click("text=New task")
        page.fill("#id_title", "Greet visitors")
        page.fill(
            "#id_description",
            "Show a greeting on the shop page.\nAsk: Which greeting? [Hello, Welcome]",
        )
        page.select_option("#id_priority", label="Urgent")
        page.click("form.task-form button[type=submit]")
        match = re.search(r"/tasks/(\d+)/$", page.url)
        assert match, page.url
        task_id = int(match.group(1))

        # The demo agent claims it and asks; the person answers on the card, in one click.
        try:
            expect(card_in(board, "needs_input", task_id)).to_be_visible(timeout=RUNNER_WAIT_MS)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- demo agent ---\n{log.read_text()}") from exc
        asking = card_in(board, "needs_input", task_id)
        expect(asking.locator(".question-text")).to_have_text("Which greeting?")
        board.screenshot(path=os.path.join(artifacts_dir, "local-mode-question.png"))
        asking.get_by_role("button", name="Welcome").click()

        # Branch pushed, PR opened, preview running: the card says so.
        try:
            expect(card_in(board, "ready_to_test", task_id)).to_be_visible(timeout=RUNNER_WAIT_MS)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- demo agent ---\n{log.read_text()}") from exc
        task = Task.objects.get(pk=task_id)
        card = card_in(board, "ready_to_test", task_id)
        expect(card.get_by_role("link", name="preview")).to_have_attribute("href", task.preview_url)
        assert task.preview_url.startswith("http://127.0.0.1:")

        # The PR with its diff on the task page.
        page.goto(f"/projects/demo/tasks/{task_id}/")
        pull = page.locator("#pull-request")
        expect(pull).to_contain_text(f"features/task-{task_id}.md")
        expect(pull.locator("pre.diff")).to_contain_text("+Decided on the board: Welcome")
        page.screenshot(path=os.path.join(artifacts_dir, "local-mode-pull-request.png"))

        # The preview serves the change.
        preview = context.new_page()
        preview.goto(task.preview_url)
        expect(preview.locator("#features")).to_contain_text("Greet visitors")
        expect(preview.locator("#features")).to_contain_text("Welcome")

        # Approve, then merge to staging from the board.
        page.click("#approve")
        expect(card_in(board, "approved", task_id)).to_be_visible()
        card_in(board, "approved", task_id).locator("input.select-task").check()
        board.click("button.merge-to-staging")
        expect(card_in(board, "staging", task_id)).to_be_visible(timeout=RUNNER_WAIT_MS)
        staging = Deployment.objects.filter(environment="staging", status="ready").latest("pk")
        assert "Greet visitors" in served(staging.url)

        # Promote; production serves it.
        board.click("button.promote")
        expect(card_in(board, "production", task_id)).to_be_visible(timeout=RUNNER_WAIT_MS)
        release = Release.objects.filter(environment="production", status="live").latest("pk")
        production = Deployment.objects.get(release=release)
        deployments = context.new_page()
        deployments.goto("/projects/demo/deployments/")
        link = deployments.locator('tr[data-environment="production"] a')
        expect(link).to_have_attribute("href", production.url)
        deployments.screenshot(path=os.path.join(artifacts_dir, "local-mode-deployments.png"))
        preview.goto(production.url)
        expect(preview.locator("#features")).to_contain_text("Greet visitors")

        # Roll back: production runs the previous release's commit again.
        row = deployments.locator(f'tr[data-release="{release.pk}"]')
        row.locator("summary", has_text="Roll back").click()
        row.get_by_role("button", name=f"Confirm rollback of release #{release.pk}").click()
        deployments.wait_for_load_state()
        expect(card_in(board, "staging", task_id)).to_be_visible()
        restored = Release.objects.filter(environment="production", status="live").latest("pk")
        assert restored.rollback_of_id == release.pk
        back = Deployment.objects.get(release=restored)
        shop = served(back.url)
        assert "Demo shop" in shop and "Greet visitors" not in shop
        print(f"\nlocal-mode loop, task created to rolled back: {time.monotonic() - started:.1f}s")
    finally:
        context.close()
    assert demo["agent_token"] not in log.read_text()  # the token never reaches the log
    assert proc.poll() is None  # the demo agent keeps running, ready for the next task
