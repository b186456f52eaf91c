"""Rate limit for API calls authenticated by a token (scripts, integrations).

People on the board use the session and are not counted here; Gitea's webhook has its own
"webhook" scope on its view. Counts live in Django's cache: per process with the default
local-memory cache, so behind N web replicas the effective limit is N times the rate unless a
shared cache is configured.
"""

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.auth is None:  # session or anonymous: not a token client
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
