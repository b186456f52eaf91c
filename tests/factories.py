"""Plain factory functions: each makes one valid object with overridable fields."""

import itertools
from typing import Any

from django.contrib.auth.models import Permission, User

from agents.models import Agent
from agents.services import agent_create
from aiworker.actors import Actor
from projects.models import Project
from tasks.models import Task
from tasks.states import TaskState

_seq = itertools.count(1)


def make_user(*, username: str | None = None, perms: tuple[str, ...] = (), **fields: Any) -> User:
    user = User.objects.create_user(
        username=username or f"user{next(_seq)}", password="pw-for-tests", **fields
    )
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # fresh, so the permission cache is empty


def make_project(**fields: Any) -> Project:
    n = next(_seq)
    # The suite was written for Gitea and the DEPLOY_DRIVER setting: a test of the local forge
    # or the local driver says so (forge="local", deploy_driver="local").
    defaults: dict[str, Any] = {
        "name": f"Project {n}",
        "slug": f"project-{n}",
        "forge": Project.Forge.GITEA,
        "deploy_driver": Project.DeployDriver.SETTING,
    }
    return Project.objects.create(**{**defaults, **fields})


def make_task(*, project: Project | None = None, **fields: Any) -> Task:
    project = project or make_project()
    defaults: dict[str, Any] = {"title": f"Task {next(_seq)}", "state": TaskState.BACKLOG}
    return Task.objects.create(project=project, **{**defaults, **fields})


def make_agent(**fields: Any) -> tuple[Agent, str]:
    fields.setdefault("name", f"agent-{next(_seq)}")
    return agent_create(**fields)


def system() -> Actor:
    return Actor.system("tests")
