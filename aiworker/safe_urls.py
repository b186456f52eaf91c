"""URLs from outside (Gitea's pr_url, preview URLs) are rendered as links only when http(s).

A `javascript:` or `data:` URL stored by a forged or odd forge answer must never become a
clickable href; the board shows such a value as plain text instead.
"""

from urllib.parse import urlsplit


def http_url(value: object) -> str:
    """The URL if its scheme is http or https and it names a host, else ""."""
    if not isinstance(value, str) or not value:
        return ""
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    # Control characters or spaces inside would let a browser reinterpret the value.
    if any(ord(c) < 33 for c in text):
        return ""
    return text
