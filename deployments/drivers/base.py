"""The interface every deployment driver implements, and the choice between them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from aiworker import errors


class DeployFailed(Exception):
    """The driver could not make the environment match; `reason` says why, for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Place:
    """Where one environment lives: its namespace and its environment kind; the commit and
    task only the local driver needs (the others deploy the image in the manifests)."""

    environment: str
    namespace: str
    project_slug: str
    commit_sha: str = ""
    task_id: int | None = None

    @classmethod
    def of(cls, deployment: Any) -> Place:
        return cls(
            environment=deployment.environment,
            namespace=deployment.namespace,
            project_slug=deployment.project.slug,
            commit_sha=deployment.commit_sha,
            task_id=deployment.task_id,
        )


@dataclass(frozen=True)
class ManagedResource:
    """Something a driver finds carrying our labels, for garbage collection."""

    key: str  # gitops: the directory; kubernetes: the namespace
    environment: str
    project_id: int | None
    task_id: int | None
    deployed_at: datetime | None


class Driver(Protocol):
    name: str
    # Kubernetes and gitops deploy an image built from the commit; the local driver runs the
    # commit itself, so a project without an image repository still deploys with it.
    needs_image: bool

    def apply(self, place: Place, manifests: list[dict[str, Any]]) -> str | None:
        """Create or update everything in `manifests`; raise DeployFailed with the reason.
        Returns the environment's URL when the driver decides it (local), else None."""

    def destroy(self, places: Iterable[Place]) -> None:
        """Remove these environments; removing one that is gone already is not an error."""

    def status(self, place: Place) -> str:
        """'ready', 'deploying', 'failed' or 'absent', as far as the driver can tell."""

    def list_managed(self) -> list[ManagedResource]:
        """Every environment carrying the managed-by label."""

    def remove_managed(self, resources: Iterable[ManagedResource]) -> None:
        """Remove what `list_managed` returned (garbage collection)."""


def driver_for(project: Any) -> Driver:
    """The project's own choice (Project.deploy_driver), else the DEPLOY_DRIVER setting."""
    return get_driver(project.deploy_driver or None)


# name -> the driver class, by import path (as projects/forges/ does for forges): this module
# never imports its children, which import it. Each class builds itself with `from_settings()`.
DRIVERS: dict[str, str] = {
    "gitops": "deployments.drivers.gitops.GitOpsDriver",
    "kubernetes": "deployments.drivers.kubernetes.KubernetesDriver",
    "local": "deployments.drivers.local.LocalDriver",
    "disabled": "deployments.drivers.disabled.DisabledDriver",
}


def get_driver(name: str | None = None) -> Driver:
    name = name or settings.DEPLOY_DRIVER
    path = DRIVERS.get(name)
    if path is None:
        raise errors.NotConfigured(
            f"DEPLOY_DRIVER={name!r} is not a driver; use {', '.join(sorted(DRIVERS))}."
        )
    driver: Driver = import_string(path).from_settings()
    return driver


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
