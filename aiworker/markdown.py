"""Markdown that people and agents write (task descriptions, specifications, comments) as safe
HTML: markdown-it-py renders CommonMark with tables and strikethrough, raw HTML off; nh3 then
keeps only the tags and attributes a comment needs, links http(s)/mailto only, with
rel="noopener noreferrer". No hand-written sanitizer."""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable(
    ["table", "strikethrough"]
)
TAGS = {
    "p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}


def render(text: str | None) -> SafeString:
    if not text:
        return mark_safe("")
    html = _renderer.render(str(text))
    cleaned = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        filter_style_properties={"text-align"},
    )
    return mark_safe(cleaned)  # sanitized by nh3 just above
