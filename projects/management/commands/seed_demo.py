"""Load the demo project (tasks in every column, a demo agent) and an admin login.

Without GITEA_URL the project runs in local mode: the local forge holds its repository, seeded
with the small web app in projects/demo_app/, and the local driver runs that app for previews,
staging and production (`manage.py run_demo_agent` then works its tasks; README "Local mode").

Idempotent: a second run prints the same credentials and creates nothing new. The generated
credentials are kept in var/demo-credentials.json (git-ignored, mode 0600) so they can be
printed again; they are for a developer's machine only.
"""

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from agents.services import agent_create
from aiworker.actors import Actor
from deployments.models import Release
from projects.forges import local_git
from projects.forges.local import LocalForge
from projects.models import Membership, Project
from tasks.models import Priority, Task, TaskQuestion
from tasks.services import record_event, task_create
from tasks.states import TaskState

DEMO_SLUG = "demo"
DEMO_APP = Path(__file__).resolve().parents[2] / "demo_app"
# (title, state, priority) — at least one task in every column of the board.
DEMO_TASKS = [
    ("Add a health endpoint", TaskState.BACKLOG, Priority.HIGH),
    ("Dark mode for the settings page", TaskState.BACKLOG, Priority.MEDIUM),
    ("Export invoices as CSV", TaskState.BACKLOG, Priority.LOW),
    ("Paginate the orders API", TaskState.IN_PROGRESS, Priority.HIGH),
    ("Retry failed webhook deliveries", TaskState.NEEDS_INPUT, Priority.URGENT),
    ("Show the build number in the footer", TaskState.READY_TO_TEST, Priority.MEDIUM),
    ("Rate-limit the login form", TaskState.APPROVED, Priority.HIGH),
    ("Upgrade to Django 5.2", TaskState.STAGING, Priority.MEDIUM),
    ("Fix timezone of daily report", TaskState.PRODUCTION, Priority.LOW),
    ("Rewrite in a weekend", TaskState.CANCELLED, Priority.LOW),
]


class Command(BaseCommand):
    help = "Create the demo project, tasks in every column, a demo agent and an admin login."

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.VAR_DIR) / "demo-credentials.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        with transaction.atomic():
            password = self._admin(saved)
            token = self._agent(saved)
            created = self._project()
            self._membership()
        saved.update({"admin_password": password, "agent_token": token})
        path.write_text(json.dumps(saved))
        path.chmod(0o600)
        self.stdout.write(
            self.style.SUCCESS("Demo project ready" if created else "Demo project already loaded")
        )
        base = f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"  # `make run` honours PORT
        self.stdout.write(f"  Board:     {base}/projects/{DEMO_SLUG}/board/")
        self.stdout.write(f"  Admin:     {base}/admin/")
        self.stdout.write(f"  Login:     admin / {password or '(changed by you; not shown)'}")
        shown = token or "rotated; not shown"
        self.stdout.write(f"  MCP:       {base}/mcp  (demo agent token: {shown})")

    def _admin(self, saved: dict[str, str]) -> str:
        user = User.objects.filter(username="admin").first()
        if user is None:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@example.com", password)
            return password
        password = saved.get("admin_password", "")
        return password if password and user.check_password(password) else ""

    def _membership(self) -> None:
        # A superuser passes every check anyway; the row shows in the admin how roles look.
        user = User.objects.filter(username="admin").first()
        project = Project.objects.filter(slug=DEMO_SLUG).first()
        if user and project:
            Membership.objects.get_or_create(
                user=user, project=project, defaults={"role": Membership.Role.ADMIN}
            )

    def _other_agent(self, name: str) -> Agent:
        agent = Agent.objects.filter(name=name).first()
        if agent is None:
            agent, _ = agent_create(name=name)  # its token is never shown
        return agent

    def _repository(self, project: Project) -> str:
        """Local mode: the repository, with the demo app committed on every branch of the
        flow when the platform just created it; the sha the branches start at."""
        forge = LocalForge(project)
        forge.ensure_repository()
        branches = (project.default_branch, project.staging_branch, project.production_branch)
        if local_git.tree_is_empty(forge.path, project.default_branch):
            return local_git.commit_directory(
                forge.path, DEMO_APP, message="The demo shop", branches=branches
            )
        return local_git.sha_of(forge.path, project.production_branch)

    def _agent(self, saved: dict[str, str]) -> str:
        agent = Agent.objects.filter(name="demo-agent").first()
        if agent is None:
            _, token = agent_create(name="demo-agent", can_plan=True)
            return token
        from agents.services import hash_token

        token = saved.get("agent_token", "")
        return token if token and hash_token(token) == agent.token_hash else ""

    def _project(self) -> bool:
        if Project.objects.filter(slug=DEMO_SLUG).exists():
            return False
        local = not settings.GITEA_URL
        on_gitea = {
            "gitea_owner": "demo",
            "gitea_repo": "shop",
            "image_repository": "registry.example.com/demo/shop",
        }
        project = Project.objects.create(
            name="Demo shop",
            slug=DEMO_SLUG,
            description="A demo project with a task in every column.",
            wip_limits={"in_progress": 3},
            run_command="python app.py {port}",
            health_path="/health",
            **({} if local else on_gitea),
        )
        seeded_sha = self._repository(project) if local else ""
        actor = Actor.system("demo loader")
        # Every active task has its own holder and a real lease (SPEC §5): two other demo
        # agents hold them, so the demo agent `make run` starts is free for new tasks. Under
        # `make run` the watchdog gives their tasks back if nobody drives them, and says so.
        holders = {
            TaskState.IN_PROGRESS: self._other_agent("demo-agent-3"),
            TaskState.NEEDS_INPUT: self._other_agent("demo-agent-2"),
        }
        now = timezone.now()
        for title, state, priority in DEMO_TASKS:
            task = task_create(
                project=project,
                title=title,
                priority=priority,
                actor=actor,
                description=f"Demo task: {title.lower()}.",
            )
            if state != TaskState.BACKLOG:
                # The demo jumps straight to each column; a real task gets there step by step.
                holder = holders.get(state)
                Task.objects.filter(pk=task.pk).update(
                    state=state,
                    state_changed_at=now - timedelta(hours=len(title) % 7),
                    assigned_agent=holder,
                    attempt_count=1 if holder else 0,
                    lease_expires_at=now + settings.TASK_LEASE_DURATION if holder else None,
                )
                if holder:
                    Agent.objects.filter(pk=holder.pk).update(
                        current_task=task, status="busy", last_heartbeat_at=now
                    )
                record_event(
                    task=task,
                    kind="status_changed",
                    actor=actor,
                    from_state="backlog",
                    to_state=state,
                    message="Loaded by the demo.",
                )
            if state in (TaskState.STAGING, TaskState.PRODUCTION):
                # A task in staging or production got there with a release that carried it.
                release = Release.objects.create(
                    project=project,
                    environment=state,
                    commit_sha=seeded_sha,  # local mode: what a rollback returns to
                    status=Release.Status.LIVE,
                    deployed_at=now,
                )
                release.tasks.add(task)
            if state == TaskState.NEEDS_INPUT:
                TaskQuestion.objects.create(
                    task=task,
                    agent=holders[TaskState.NEEDS_INPUT],
                    question="Retry forever, or give up after 5 attempts?",
                    options=["forever", "5 attempts"],
                )
        parent = Task.objects.get(project=project, title="Add a health endpoint")
        dependency = Task.objects.get(project=project, title="Paginate the orders API")
        parent.depends_on.add(dependency)
        return True
