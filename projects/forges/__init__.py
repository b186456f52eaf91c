"""The forges a project's repository lives on, behind one interface (projects/forges/base.py).

The registry maps a name to an import path, as deployments/drivers/ does for deploy drivers;
the base module never imports its children.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

from aiworker import errors
from projects.forges.base import Forge, PullRequest

if TYPE_CHECKING:
    from projects.models import Project

FORGES: dict[str, str] = {
    "gitea": "projects.forges.gitea.GiteaForge",
    "local": "projects.forges.local.LocalForge",
}


def get_forge(project: Project) -> Forge:
    """The forge of `project`, bound to it."""
    path = FORGES.get(project.forge)
    if path is None:
        raise errors.NotConfigured(
            f"Project {project.slug} names the forge {project.forge!r}; "
            f"use one of {', '.join(sorted(FORGES))}."
        )
    forge: Forge = import_string(path)(project)
    return forge


__all__ = ["FORGES", "Forge", "PullRequest", "get_forge"]
