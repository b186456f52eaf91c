from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"

    def ready(self) -> None:
        # Registers the per-project permissions with django-rules.
        from projects import roles  # noqa: F401
