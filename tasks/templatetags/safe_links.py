from django import template

from aiworker.safe_urls import http_url as _http_url

register = template.Library()


@register.filter
def http_url(value: object) -> str:
    """`{{ url|http_url }}`: the URL when it is http(s), else "" (then render no link)."""
    return _http_url(value)
