from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"

    def ready(self) -> None:
        # Registers the per-project permissions with django-rules.
        # Register the jobs by name in every process (aiworker.jobs starts jobs by name, and
        # Celery's autodiscovery only runs in a worker).
        from projects import (
            jobs,  # noqa: F401
            roles,  # noqa: F401
        )
