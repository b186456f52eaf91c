"""Rollback in a real browser (Debian's Chromium, Playwright) against daphne: the deployments
page asks for a confirmation naming the tasks that go back, the tasks then show in Staging on
the board with a timeline line, and promoting again from the board puts them back in
Production. Real gitops repository in tmp_path; no cluster (the gitops driver only commits)."""

import pytest
from playwright.sync_api import expect

from deployments import services
from deployments.models import Release
from projects.forges.local import LocalForge
from tasks.models import Task, TaskEvent
from tests import factories
from tests.board.live_server import start_daphne
from tests.browser import launched_chromium, signed_in_context

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WAIT_MS = 10_000


def _production_release(project, tag, tasks):
    release = Release.objects.create(
        project=project,
        environment="production",
        image=f"registry.example.test/acme/shop:{tag}",
        commit_sha=tag,
    )
    release.tasks.set(tasks)
    return services.release_deploy(release_id=release.pk)


def test_rollback_confirms_then_tasks_return_to_staging_and_can_be_promoted_again(
    gitops, preview_project, approver, eager_jobs, settings, tmp_path
):
    # The platform's own forge (a real bare repository): promote fast-forwards production.
    settings.VAR_DIR = tmp_path / "var"
    preview_project.forge = "local"
    preview_project.save()
    LocalForge(preview_project).ensure_repository()
    old = factories.make_task(project=preview_project, state="production", title="Old feature")
    _production_release(preview_project, "1111111", [old])
    new = factories.make_task(project=preview_project, state="staging", title="New feature")
    staging = Release.objects.create(
        project=preview_project,
        environment="staging",
        image="registry.example.test/acme/shop:2222222",
        commit_sha="2222222",
        status="live",
    )
    staging.tasks.set([new])
    second = _production_release(preview_project, "2222222", [new])
    assert Task.objects.get(pk=new.pk).state == "production"

    url, _ = start_daphne()
    with launched_chromium() as browser:
        context = signed_in_context(browser, url, approver, timeout_ms=WAIT_MS)
        page = context.new_page()
        page.goto(f"/projects/{preview_project.slug}/deployments/")
        row = page.locator(f'tr[data-release="{second.pk}"]')
        confirm = row.get_by_role("button", name=f"Confirm rollback of release #{second.pk}")
        expect(confirm).to_be_hidden()  # nothing happens on one click
        row.locator("summary", has_text="Roll back").click()
        expect(row.locator(".rollback-tasks")).to_contain_text(f"#{new.pk} New feature")
        assert Task.objects.get(pk=new.pk).state == "production"

        confirm.click()

        page.wait_for_load_state()
        assert Task.objects.get(pk=new.pk).state == "staging"
        assert Task.objects.get(pk=old.pk).state == "production"
        line = TaskEvent.objects.filter(task=new, to_state="staging").latest("pk")
        assert f"release {second.pk} rolled back" in line.message

        board = context.new_page()
        board.goto(f"/projects/{preview_project.slug}/board/")
        expect(board.locator("#board-root")).to_have_attribute("data-live", "open")
        expect(board.locator(f'.cards[data-state="staging"] #task-{new.pk}')).to_be_visible()
        board.locator('section.column[data-state="staging"] button.promote').click()
        expect(board.locator("#board-message")).to_contain_text("being promoted")
        expect(board.locator(f'.cards[data-state="production"] #task-{new.pk}')).to_be_visible()
        context.close()
    assert Task.objects.get(pk=new.pk).state == "production"
