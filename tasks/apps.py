from typing import Any

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out


class TasksConfig(AppConfig):
    name = "tasks"

    def ready(self) -> None:
        # Register the jobs by name in every process (tasks.effects starts jobs by name, and
        # Celery's autodiscovery only runs in a worker).
        from tasks import jobs  # noqa: F401

        # Logging out closes the board sockets that session opened, in every web process.
        user_logged_out.connect(_close_board_sockets, dispatch_uid="tasks.close_board_sockets")


def _close_board_sockets(sender: Any, request: Any, **kwargs: Any) -> None:
    from aiworker.live import close_session_sockets

    session = getattr(request, "session", None)
    close_session_sockets(getattr(session, "session_key", None))
