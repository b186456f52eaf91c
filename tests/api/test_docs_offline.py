"""/api/docs/ in Chromium with no network beyond this machine: Swagger UI's files come from
drf-spectacular-sidecar through the platform's own static files, never from a CDN."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.board.live_server import start_daphne
from tests.browser import launched_chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_from_the_platform_alone():
    url, _ = start_daphne()
    hosts: set[str] = set()
    with launched_chromium() as browser:
        page = browser.new_page(base_url=url)
        page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
        page.goto("/api/docs/")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("AiWorker API")
        expect(page.locator(".opblock").first).to_be_visible()
    assert hosts == {urlsplit(url).netloc}, hosts
