"""The deployments page follows deploys live in Chromium: a preview started elsewhere shows up
deploying, then ready with its URL, without a reload. Real local driver, real process."""

import os
import re
import threading

import pytest
from playwright.sync_api import expect

from aiworker.actors import Actor
from deployments import services
from tests import factories
from tests.board.live_server import start_daphne
from tests.browser import launched_chromium, signed_in_context
from tests.deployments.test_local_driver import in_progress, local  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_preview_deploy_shows_on_the_open_deployments_page(local):  # noqa: F811
    project, checkout, _ = local
    task = in_progress(project, checkout, "live\n")
    url, _ = start_daphne()
    viewer = factories.make_user(is_superuser=True)
    with launched_chromium() as browser:
        context = signed_in_context(browser, url, viewer)
        page = context.new_page()
        page.goto(f"/projects/{project.slug}/deployments/")
        section = page.locator("section.deployments")
        expect(section).to_have_attribute("data-live", "open")
        expect(section).to_contain_text("No live preview.")

        # Elsewhere (the deploy job): Playwright's loop owns this thread, so another one.
        job = threading.Thread(
            target=services.preview_deploy,
            kwargs={"task_id": task.pk, "actor": Actor.system("test")},
        )
        job.start()
        job.join(timeout=60)

        row = section.locator("tr[data-deployment]")
        expect(row).to_contain_text(f"#{task.pk}")
        expect(row.locator(".status")).to_have_text("ready")
        task.refresh_from_db()
        expect(row.get_by_role("link", name=task.preview_url)).to_be_visible()
        assert int(section.get_attribute("data-redrawn") or 0) >= 1  # redrawn, not reloaded
        context.close()


def test_a_release_deploy_shows_on_its_task_cards_live(local):  # noqa: F811
    from deployments.models import Release

    project, _, sha = local
    project.run_command = "echo 'port {port} taken'; exit 4"  # the staging deploy fails
    project.save()
    task = factories.make_task(project=project, state="approved", title="Ship it")
    release = Release.objects.create(
        project=project, environment="staging", commit_sha=sha, status="deploying"
    )
    release.tasks.set([task])
    url, _ = start_daphne()
    with launched_chromium() as browser:
        context = signed_in_context(browser, url, factories.make_user(is_superuser=True))
        board = context.new_page()
        board.goto(f"/projects/{project.slug}/board/")
        expect(board.locator("#board-root")).to_have_attribute("data-live", "open")
        card = board.locator(f"#task-{task.pk}")
        expect(card.locator(".badge.release")).to_have_text("staging deploying")

        job = threading.Thread(target=services.release_deploy, kwargs={"release_id": release.pk})
        job.start()
        job.join(timeout=60)

        badge = card.locator(".badge.release")
        expect(badge).to_have_text("staging failed")
        expect(badge).to_have_attribute("title", re.compile("exited with code 4"))
        expect(board.locator('.cards[data-state="approved"]')).to_contain_text("Ship it")
        context.close()


def test_a_merge_to_staging_shows_each_step_on_the_card_and_the_deployments_page(
    local,  # noqa: F811
    monkeypatch,
    artifacts_dir,
):
    """merging -> queued -> deploying -> failed with the reason, each seen without a reload.

    The test plays the Celery worker: the release's deploy job is recorded instead of sent, so
    "queued" lasts until the test runs the job (release_deploy) itself."""
    from deployments import jobs
    from deployments.releases import release_merge_to_staging
    from projects.forges.local import LocalForge
    from tests.deployments.test_local_driver import push_task_commit

    project, checkout, _ = local
    project.run_command = "sleep 3; echo 'no port today'; exit 4"  # deploying, then failed
    project.save()
    task = factories.make_task(project=project, state="approved", title="Ship it")
    push_task_commit(checkout, task, "shipped\n")
    pr, _ = LocalForge(project).open_pull_request(
        head=f"task/{task.pk}", base="main", title="Ship it", body=""
    )
    task.pr_number = pr.number
    task.save()
    queued_jobs: list[dict] = []
    monkeypatch.setattr(jobs.deploy_release, "delay", lambda **kw: queued_jobs.append(kw))
    releaser = factories.make_user(is_superuser=True)
    url, _ = start_daphne()
    with launched_chromium() as browser:
        context = signed_in_context(browser, url, releaser)
        board = context.new_page()
        board.goto(f"/projects/{project.slug}/board/")
        expect(board.locator("#board-root")).to_have_attribute("data-live", "open")
        # Every text the card's release badge shows, in order (steps can be brief).
        board.evaluate(
            """(id) => {
              window.steps = [];
              const note = () => {
                const badge = document.querySelector("#task-" + id + " .badge.release");
                const text = badge ? badge.textContent : "";
                if (text && window.steps[window.steps.length - 1] !== text) window.steps.push(text);
              };
              new MutationObserver(note).observe(document.body, {subtree: true, childList: true});
            }""",
            task.pk,
        )
        page = context.new_page()
        page.goto(f"/projects/{project.slug}/deployments/")
        section = page.locator("section.deployments")
        expect(section).to_have_attribute("data-live", "open")

        merge = threading.Thread(
            target=release_merge_to_staging,
            kwargs={"task_ids": [task.pk], "actor": Actor.of_user(releaser)},
        )
        merge.start()
        merge.join(timeout=60)
        card = board.locator(f"#task-{task.pk}")
        expect(card.locator(".badge.release")).to_have_text("staging queued")
        assert board.evaluate("window.steps")[:2] == ["staging merging", "staging queued"]
        row = section.locator("table.releases-in-progress tr[data-release]")
        expect(row.locator(".status")).to_have_text("queued")
        expect(row).to_contain_text(f"#{task.pk}")

        assert len(queued_jobs) == 1
        job = threading.Thread(target=services.release_deploy, kwargs=queued_jobs[0])
        job.start()
        expect(card.locator(".badge.release")).to_have_text("staging deploying")
        expect(row.locator(".status")).to_have_text("deploying")
        shots = os.path.join(artifacts_dir, "screenshots")
        os.makedirs(shots, exist_ok=True)
        page.screenshot(path=os.path.join(shots, "deployments-release-deploying.png"))
        board.screenshot(path=os.path.join(shots, "board-release-deploying.png"))
        job.join(timeout=60)
        badge = card.locator(".badge.release")
        expect(badge).to_have_text("staging failed")
        expect(badge).to_have_attribute("title", re.compile("exited with code 4"))
        expect(section.locator("table.releases-in-progress .status")).to_have_text("failed")
        assert board.evaluate("window.steps") == [
            "staging merging",
            "staging queued",
            "staging deploying",
            "staging failed",
        ]
        context.close()
