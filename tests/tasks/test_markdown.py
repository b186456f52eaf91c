"""Markdown on the task page: rendered, and sanitized against what an agent or a person could
write into a description, a specification or a comment."""

from html.parser import HTMLParser

import pytest
from django.test import Client

from aiworker.markdown import render
from tests import factories

ATTACKS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD4=)",
    '<a href="https://x.test" onclick="alert(1)">x</a>',
    "<iframe src='https://x.test'></iframe>",
    '![x](https://x.test/a.png" onerror="alert(1))',
    "<svg onload=alert(1)>",
]


class Elements(HTMLParser):
    """Every element and attribute the browser would build from the HTML (escaped text is
    text: `&lt;img onerror…&gt;` shows as characters and runs nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


@pytest.mark.parametrize("text", ATTACKS)
def test_nothing_executable_survives(text):
    parser = Elements()
    parser.feed(str(render(text)))
    for tag, attrs in parser.found:
        assert tag not in {"script", "img", "iframe", "svg", "object", "embed", "style"}, text
        assert not [name for name in attrs if name.startswith("on")], (text, attrs)
        href = attrs.get("href") or ""
        assert not href or href.startswith(("http://", "https://", "mailto:")), (text, href)


def test_markdown_renders_what_a_task_needs():
    html = str(
        render("# Goal\n\n**bold** and `code`\n\n- one\n- two\n\n[docs](https://docs.test/x)")
    )
    assert "<h1>Goal</h1>" in html and "<strong>bold</strong>" in html
    assert "<code>code</code>" in html and "<li>one</li>" in html
    assert '<a href="https://docs.test/x" rel="noopener noreferrer">docs</a>' in html


def test_the_task_page_renders_the_description_as_sanitized_markdown(db):
    user = factories.make_user(is_superuser=True)
    task = factories.make_task(
        description="## Steps\n\n1. **Run** it\n\n<script>window.x=1</script>"
    )
    client = Client()
    client.force_login(user)
    page = client.get(f"/projects/{task.project.slug}/tasks/{task.pk}/").content.decode()
    assert "<h2>Steps</h2>" in page and "<strong>Run</strong>" in page
    assert "<script>window.x=1</script>" not in page
