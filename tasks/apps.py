from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"

    def ready(self) -> None:
        # Register the jobs by name in every process (tasks.effects starts jobs by name, and
        # Celery's autodiscovery only runs in a worker).
        from tasks import jobs  # noqa: F401
