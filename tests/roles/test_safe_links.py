"""A pr_url (or preview URL) from Gitea that is not http(s) is never rendered as a link."""

import pytest
from django.test import Client

from aiworker.safe_urls import http_url
from tests import factories

pytestmark = pytest.mark.django_db

BAD = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,x",
    " java\nscript:x",
]


@pytest.mark.parametrize("url", BAD)
def test_a_non_http_pr_url_is_not_a_link_on_the_board_or_the_task_page(url, user):
    task = factories.make_task(pr_url=url, pr_number=3, preview_url=url)
    client = Client()
    client.force_login(user)
    board = client.get(f"/projects/{task.project.slug}/board/").content.decode()
    detail = client.get(f"/projects/{task.project.slug}/tasks/{task.pk}/").content.decode()
    for html in (board, detail):
        assert 'href="javascript' not in html.lower()
        assert 'href="data:' not in html.lower()
        assert 'href=" java' not in html.lower()


def test_an_https_pr_url_is_a_link(user):
    task = factories.make_task(pr_url="https://git.example/o/r/pulls/3", pr_number=3)
    client = Client()
    client.force_login(user)
    board = client.get(f"/projects/{task.project.slug}/board/").content.decode()
    assert 'href="https://git.example/o/r/pulls/3"' in board


def test_http_url_keeps_only_http_and_https():
    assert http_url("http://a.example/x") == "http://a.example/x"
    assert http_url("https://a.example") == "https://a.example"
    for url in [*BAD, "", None, "https://", "ftp://a.example", "//a.example/x", 5]:
        assert http_url(url) == ""
