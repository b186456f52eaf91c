from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "deployments"

    def ready(self) -> None:
        # Register the jobs by name in every process, not only in a worker that autodiscovers:
        # tasks.effects starts them by name in the web process too (eager in the default mode).
        from deployments import jobs  # noqa: F401
