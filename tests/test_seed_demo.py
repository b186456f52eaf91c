from django.core.management import call_command

from agents.models import Agent
from projects.models import Project
from tasks.models import Task
from tasks.states import ACTIVE_STATES, TaskState


def test_seed_demo_fills_every_column_and_is_idempotent(db, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out
    project = Project.objects.get(slug="demo")
    states = set(Task.objects.filter(project=project).values_list("state", flat=True))
    assert states == set(TaskState.values)
    assert Project.objects.count() == 1 and Agent.objects.count() == 3
    assert Task.objects.count() == 10
    # Every active task has its own holder and a lease; staging and production have releases.
    for agent in Agent.objects.all():
        held = Task.objects.filter(assigned_agent=agent, state__in=ACTIVE_STATES)
        assert held.count() <= 1
    active = Task.objects.filter(state__in=ACTIVE_STATES)
    assert all(t.assigned_agent_id and t.lease_expires_at for t in active)
    for task in Task.objects.filter(state__in=[TaskState.STAGING, TaskState.PRODUCTION]):
        assert task.releases.filter(environment=task.state).exists()
    password_line = next(line for line in first.splitlines() if "Login:" in line)
    assert password_line in second  # the same credentials, printed again
    assert (tmp_path / "demo-credentials.json").stat().st_mode & 0o777 == 0o600
