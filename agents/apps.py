from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self) -> None:
        # Register the jobs by name in every process (tasks.effects starts jobs by name, and
        # Celery's autodiscovery only runs in a worker).
        from agents import jobs  # noqa: F401
        from agents.services import agent_sync_current_task
        from tasks import effects

        # A transition keeps its agent's current task and busy/idle in step, in its own
        # transaction, without the tasks app importing this one.
        effects.on_transition(agent_sync_current_task)
