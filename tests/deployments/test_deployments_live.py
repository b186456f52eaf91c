"""The deployments page follows deploys live in Chromium: a preview started elsewhere shows up
deploying, then ready with its URL, without a reload. Real local driver, real process."""

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
