from django import template
from django.utils.safestring import SafeString

from aiworker.markdown import render

register = template.Library()


@register.filter(name="markdown")
def markdown(value: object) -> SafeString:
    """`{{ text|markdown }}`: the text's Markdown as sanitized HTML (aiworker/markdown.py)."""
    return render(None if value is None else str(value))
