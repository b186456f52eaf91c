"""The kubernetes driver: applies rendered manifests through the official client.

Create-or-update is read-then-replace (the object's resourceVersion carried over, so a
concurrent writer makes the replace fail instead of being overwritten). After applying, it
waits for the Deployment's rollout up to settings.DEPLOY_ROLLOUT_TIMEOUT and, when the rollout
does not finish, reports why from the Deployment's conditions and the pods' container states.
Destroying an environment deletes its namespace, which removes everything inside it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from aiworker import errors
from deployments import manifests as m
from deployments.drivers.base import DeployFailed, ManagedResource, Place, parse_time

TIMEOUT = (5, 30)  # connect, read: no call to the API server waits forever
POLL_SECONDS = 2.0

# kind -> (API group attribute, method suffix, namespaced)
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("core", "namespace", False),
    "ResourceQuota": ("core", "namespaced_resource_quota", True),
    "LimitRange": ("core", "namespaced_limit_range", True),
    "NetworkPolicy": ("networking", "namespaced_network_policy", True),
    "Deployment": ("apps", "namespaced_deployment", True),
    "Service": ("core", "namespaced_service", True),
    "Ingress": ("networking", "namespaced_ingress", True),
}


class KubernetesDriver:
    name = "kubernetes"
    needs_image = True

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        rollout_timeout: float = 300.0,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.rollout_timeout = rollout_timeout
        self.poll_seconds = poll_seconds

    @classmethod
    def from_settings(cls) -> KubernetesDriver:
        return cls(api_client_from_settings(), rollout_timeout=settings.DEPLOY_ROLLOUT_TIMEOUT)

    # --- the interface ------------------------------------------------------------------------

    def apply(self, place: Place, manifests: list[dict[str, Any]]) -> None:
        for manifest in manifests:
            self._create_or_replace(manifest)
        for manifest in manifests:
            if manifest["kind"] == "Deployment":
                self._wait_for_rollout(
                    manifest["metadata"]["namespace"], manifest["metadata"]["name"]
                )

    def destroy(self, places: Iterable[Place]) -> None:
        for place in places:
            self._delete_namespace(place.namespace)

    def status(self, place: Place) -> str:
        try:
            deployment = self._call(
                self.apps.read_namespaced_deployment_status, m.APP_NAME, place.namespace
            )
        except _Missing:
            return "absent"
        ready, _ = _rollout_state(deployment)
        return "ready" if ready else "deploying"

    def list_managed(self) -> list[ManagedResource]:
        found = []
        listing = self._call(
            self.core.list_namespace, label_selector=f"{m.LABEL_MANAGED_BY}={m.MANAGED_BY}"
        )
        for namespace in listing.items:
            labels = namespace.metadata.labels or {}
            notes = namespace.metadata.annotations or {}
            found.append(
                ManagedResource(
                    key=namespace.metadata.name,
                    environment=labels.get(m.LABEL_ENVIRONMENT, ""),
                    project_id=_int(labels.get(m.LABEL_PROJECT_ID)),
                    task_id=_int(labels.get(m.LABEL_TASK)),
                    deployed_at=parse_time(notes.get(m.ANNOTATION_DEPLOYED_AT)),
                )
            )
        return found

    def remove_managed(self, resources: Iterable[ManagedResource]) -> None:
        for resource in resources:
            self._delete_namespace(resource.key)

    # --- the API ------------------------------------------------------------------------------

    def _create_or_replace(self, manifest: dict[str, Any]) -> None:
        group, suffix, namespaced = KINDS[manifest["kind"]]
        api = getattr(self, group)
        name = manifest["metadata"]["name"]
        where = (name, manifest["metadata"]["namespace"]) if namespaced else (name,)
        try:
            current = self._call(getattr(api, f"read_{suffix}"), *where)
        except _Missing:
            try:
                self._call(getattr(api, f"create_{suffix}"), *where[1:], body=manifest)
            except _Missing:
                raise DeployFailed(f"cannot create {manifest['kind']} {name}: not found") from None
            return
        body = json.loads(json.dumps(manifest))
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        if manifest["kind"] == "Service" and current.spec and current.spec.cluster_ip:
            body["spec"]["clusterIP"] = current.spec.cluster_ip  # immutable once allocated
        self._call(getattr(api, f"replace_{suffix}"), *where, body=body)

    def _wait_for_rollout(self, namespace: str, name: str) -> None:
        deadline = time.monotonic() + self.rollout_timeout
        while True:
            deployment = self._call(self.apps.read_namespaced_deployment_status, name, namespace)
            ready, failure = _rollout_state(deployment)
            if ready:
                return
            if failure or time.monotonic() >= deadline:
                why = failure or f"not ready after {self.rollout_timeout:.0f}s"
                raise DeployFailed(
                    f"Deployment {namespace}/{name}: {why}{self._pod_trouble(namespace)}"
                )
            time.sleep(self.poll_seconds)

    def _pod_trouble(self, namespace: str) -> str:
        try:
            pods = self._call(
                self.core.list_namespaced_pod,
                namespace,
                label_selector=f"app.kubernetes.io/name={m.APP_NAME}",
            )
        except DeployFailed:
            return ""
        reasons = []
        for pod in pods.items:
            for status in (pod.status and pod.status.container_statuses) or []:
                waiting = status.state and status.state.waiting
                if waiting and waiting.reason:
                    reasons.append(f"{waiting.reason}: {waiting.message or ''}".strip(": "))
        return f" (pods: {'; '.join(sorted(set(reasons)))})" if reasons else ""

    def _delete_namespace(self, name: str) -> None:
        # Gone already: destroying twice is not an error.
        with contextlib.suppress(_Missing):
            self._call(self.core.delete_namespace, name)

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, _request_timeout=TIMEOUT, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                raise _Missing() from None
            raise DeployFailed(f"Kubernetes API answered {exc.status}: {_message(exc)}") from None
        except HTTPError as exc:
            raise DeployFailed(f"Kubernetes API unreachable: {type(exc).__name__}") from None


class _Missing(Exception):
    pass


def api_client_from_settings(purpose: str = "DEPLOY_DRIVER=kubernetes") -> client.ApiClient:
    """In-cluster when running in a pod, else the kubeconfig of KUBECONFIG or ~/.kube."""
    configuration = client.Configuration()
    kubeconfig = settings.KUBECONFIG or str(Path.home() / ".kube" / "config")
    try:
        if not settings.KUBECONFIG and _in_cluster():
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except (config.ConfigException, OSError) as exc:
        raise errors.NotConfigured(
            f"{purpose} but no cluster is reachable: not in a pod and no usable kubeconfig "
            f"({type(exc).__name__})."
        ) from None
    return client.ApiClient(configuration)


def _rollout_state(deployment: Any) -> tuple[bool, str]:
    """(ready, why it failed) from a Deployment's status, as `kubectl rollout status` does."""
    spec_replicas = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    status = deployment.status
    if status is None:
        return False, ""
    for condition in status.conditions or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            return False, condition.message or "progress deadline exceeded"
    generation_seen = (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
    ready = (
        generation_seen
        and (status.updated_replicas or 0) >= spec_replicas
        and (status.available_replicas or 0) >= spec_replicas
        and (status.replicas or 0) <= (status.updated_replicas or 0)
    )
    return ready, ""


def _message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body or "{}").get("message") or exc.reason or ""
    except (ValueError, AttributeError):
        return exc.reason or ""


def _in_cluster() -> bool:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
