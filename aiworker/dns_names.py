"""Every Kubernetes name and DNS label comes from `dns_label`: a valid DNS-1123 label.

A label is 1-63 characters of [a-z0-9-], starting and ending with a letter or digit. Slugs
such as `tail_`, `-lead` or 60 characters plus "-production" would break that; a name that
had to be changed or shortened gets a hash of the original, so two different inputs never
collide on the same label.
"""

import hashlib
import re

MAX_LABEL = 63
_INVALID = re.compile(r"[^a-z0-9-]+")
_VALID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SLUG_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,58}[a-z0-9])?$")
SLUG_HELP = (
    "Lowercase letters, digits and hyphens, starting and ending with a letter or digit "
    "(at most 60): it names Kubernetes namespaces and hosts."
)


def _clean(text: str) -> str:
    return re.sub(r"-{2,}", "-", _INVALID.sub("-", text.lower())).strip("-")


def dns_label(*parts: str, max_len: int = MAX_LABEL) -> str:
    """The parts joined by "-" as a DNS-1123 label; hash-suffixed when it had to change.

    The last part (e.g. the environment) is kept whole, so `…-staging` still reads as such.
    """
    raw = "-".join(parts)
    if len(raw) <= max_len and _VALID.match(raw):
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    tail = [_clean(parts[-1])] if len(parts) > 1 and _clean(parts[-1]) else []
    room = max_len - len(digest) - sum(len(t) + 1 for t in tail) - 1
    head = _clean("-".join(parts[:-1] if tail else parts))[: max(room, 0)].strip("-")
    return "-".join(p for p in [head, digest, *tail] if p)
