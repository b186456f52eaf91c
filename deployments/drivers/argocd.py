"""What Argo CD says about an environment the gitops driver committed: the Application that
k8s/argocd's ApplicationSets generate for its directory, read through the Kubernetes API.

Ready means Argo CD synced the pushed commit and the resources are Healthy; Degraded health or
a failed sync of that commit is a failure with Argo CD's own message; anything else is still
deploying (the ApplicationSet may not have generated the Application yet: a 404 too).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from deployments.drivers.base import DeployFailed, Place

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "applications"
TIMEOUT = (5, 30)
POLL_SECONDS = 3.0
FAILED_PHASES = ("Failed", "Error")


def application_name(place: Place) -> str:
    """The name k8s/argocd/previews.yaml's templates give the directory's Application."""
    if place.environment == "preview":
        return place.namespace  # "{{.path.basename}}" of preview/<namespace>
    return f"{place.project_slug}-{place.environment}"  # "{{segment 1}}-{{segment 0}}"


@dataclass(frozen=True)
class AppState:
    state: str  # ready, deploying, failed, absent
    why: str = ""


def state_of(application: dict[str, Any] | None, revision: str = "") -> AppState:
    """The environment's state from an Application object (None: not generated yet)."""
    if application is None:
        return AppState("absent", "no Application yet")
    status = application.get("status") or {}
    sync = status.get("sync") or {}
    health = status.get("health") or {}
    operation = status.get("operationState") or {}
    synced_revision = sync.get("revision") or ""
    at_revision = not revision or synced_revision == revision
    seen = f"sync {sync.get('status') or 'unknown'}, health {health.get('status') or 'unknown'}"
    if revision and synced_revision and not at_revision:
        seen += f" at {synced_revision[:10]}, waiting for {revision[:10]}"
    operation_revision = (operation.get("syncResult") or {}).get("revision") or ""
    if operation.get("phase") in FAILED_PHASES and operation_revision in ("", revision or ""):
        return AppState("failed", f"Argo CD sync {operation['phase']}: {operation.get('message')}")
    if at_revision and health.get("status") == "Degraded":
        return AppState("failed", f"Argo CD reports Degraded: {health.get('message') or seen}")
    if at_revision and sync.get("status") == "Synced" and health.get("status") == "Healthy":
        return AppState("ready", seen)
    return AppState("deploying", seen)


class ArgoCD:
    def __init__(self, api_client: client.ApiClient, *, namespace: str) -> None:
        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace

    def read(self, name: str) -> dict[str, Any] | None:
        try:
            found = self.api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise DeployFailed(f"Kubernetes API answered {exc.status} reading {name}") from None
        except HTTPError as exc:
            raise DeployFailed(f"Kubernetes API unreachable: {type(exc).__name__}") from None
        return found if isinstance(found, dict) else None

    def wait_ready(
        self, place: Place, *, revision: str, timeout: float, poll_seconds: float = POLL_SECONDS
    ) -> None:
        """Return once Argo CD reports the place ready at `revision`; else raise DeployFailed."""
        name = application_name(place)
        deadline = time.monotonic() + timeout
        while True:
            found = state_of(self.read(name), revision)
            if found.state == "ready":
                return
            if found.state == "failed":
                raise DeployFailed(f"Application {self.namespace}/{name}: {found.why}")
            if time.monotonic() >= deadline:
                raise DeployFailed(
                    f"Application {self.namespace}/{name} not ready after {timeout:.0f}s "
                    f"({found.why})."
                )
            time.sleep(poll_seconds)

    def status(self, place: Place) -> str:
        return state_of(self.read(application_name(place))).state
