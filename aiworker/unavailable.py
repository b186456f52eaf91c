"""A database that went away answers 503 with a clear message, never a bare 500.

A dropped MariaDB connection (server restarted, connection killed, network cut) raises
`OperationalError`/`InterfaceError` from whatever query ran first. The transaction it was in is
rolled back by the server, so nothing half-written stays; Django closes the broken connection at
the end of the request (`close_if_unusable_or_obsolete`), and the next request reconnects.
"""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

MESSAGE = "The database is not reachable right now; nothing was changed. Try again in a moment."


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return (
        request.path.startswith("/api/")
        or request.content_type == "application/json"
        or "application/json" in accept
        or request.headers.get("X-Requested-With") == "XMLHttpRequest"
    )


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("database unavailable on %s %s: %s", request.method, request.path, exception)
        for conn in connections.all(initialized_only=True):
            # Closed now if broken, so the next request reconnects (Django's request_finished
            # hook would do it too, but not under the test client, and not inside an atomic).
            conn.errors_occurred = True
            if not conn.in_atomic_block:
                conn.close_if_unusable_or_obsolete()
        headers = {"Retry-After": "5"}
        if _wants_json(request):
            return JsonResponse(
                {"detail": MESSAGE, "code": "unavailable"}, status=503, headers=headers
            )
        html = (
            "<!doctype html><title>Service unavailable</title>"
            f"<h1>Service unavailable</h1><p>{MESSAGE}</p>"
        )
        return HttpResponse(html, status=503, headers=headers)
