"""Adapter to Kubernetes for agent pods (the official `kubernetes` client).

Only agents/lifecycle.py calls it. Switched on by AGENT_POD_NAMESPACE; without it every call
raises NotConfigured. The cluster is found from KUBECONFIG, else the in-cluster service account.
Each agent gets a Secret holding its MCP token (the pod reads it by reference) and a Pod
rendered from the template in k8s/agent/pod.yaml.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aiworker import errors

MANAGED_BY = {
    "app.kubernetes.io/managed-by": "aiworker",
    "app.kubernetes.io/name": "aiworker-agent",
}
REQUEST_TIMEOUT = 15


def enabled() -> bool:
    return bool(settings.AGENT_POD_NAMESPACE)


def namespace() -> str:
    if not enabled():
        raise errors.NotConfigured(
            "Agent pods are not configured: set AGENT_POD_NAMESPACE (and KUBECONFIG outside "
            "the cluster) to let the platform start agent pods."
        )
    return str(settings.AGENT_POD_NAMESPACE)


def core_api() -> client.CoreV1Api:
    namespace()
    try:
        if settings.KUBECONFIG:
            api_client = config.new_client_from_config(config_file=settings.KUBECONFIG)
            return client.CoreV1Api(api_client)
        config.load_incluster_config()
        return client.CoreV1Api()
    except (config.ConfigException, OSError) as exc:
        raise errors.NotConfigured(f"Cannot reach the Kubernetes cluster: {exc}") from exc


def pod_name(agent_id: int) -> str:
    return f"aiworker-agent-{agent_id}"


def secret_name(agent_id: int) -> str:
    return f"aiworker-agent-{agent_id}-token"


def render_pod(*, agent_id: int, agent_name: str, project_slug: str, command: str) -> dict:
    """The pod manifest for an agent, from the template (values JSON-quoted, so YAML-safe)."""
    template = string.Template(Path(settings.AGENT_POD_TEMPLATE).read_text())
    values = {
        "POD_NAME": pod_name(agent_id),
        "NAMESPACE": settings.AGENT_POD_NAMESPACE or "default",
        "AGENT_ID": str(agent_id),
        "AGENT_NAME": agent_name,
        "PROJECT_SLUG": project_slug,
        "IMAGE": settings.AGENT_IMAGE,
        "MCP_URL": settings.AGENT_MCP_URL,
        "AGENT_COMMAND": command,
        "TOKEN_SECRET": secret_name(agent_id),
    }
    manifest = yaml.safe_load(template.substitute({k: json.dumps(v) for k, v in values.items()}))
    if not isinstance(manifest, dict) or manifest.get("kind") != "Pod":
        raise errors.NotConfigured(f"{settings.AGENT_POD_TEMPLATE} does not describe a Pod.")
    return manifest


def _api_error(action: str, exc: ApiException) -> errors.DomainError:
    reason = exc.reason or "error"
    return errors.Conflict(f"Kubernetes refused to {action}: {exc.status} {reason}.")


def create_agent_pod(*, agent_id: int, agent_name: str, project_slug: str, token: str) -> str:
    """Create the agent's token Secret and Pod; return the pod name. Idempotent on retry."""
    ns, api = namespace(), core_api()
    labels = {**MANAGED_BY, "aiworker.dev/agent": str(agent_id)}
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=secret_name(agent_id), namespace=ns, labels=labels),
        type="Opaque",
        string_data={"token": token},
    )
    manifest = render_pod(
        agent_id=agent_id,
        agent_name=agent_name,
        project_slug=project_slug,
        command=settings.AGENT_COMMAND,
    )
    manifest["metadata"]["namespace"] = ns
    creates: list[tuple[Any, Any]] = [
        (secret, api.create_namespaced_secret),
        (manifest, api.create_namespaced_pod),
    ]
    for body, create in creates:
        try:
            create(namespace=ns, body=body, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:  # already there from an earlier attempt
                raise _api_error("create the agent pod", exc) from exc
    return str(manifest["metadata"]["name"])


def delete_agent_pod(*, agent_id: int) -> None:
    """Delete the agent's Pod and Secret; absent ones are fine. The runner gets SIGTERM."""
    ns, api = namespace(), core_api()
    for name, delete in (
        (pod_name(agent_id), api.delete_namespaced_pod),
        (secret_name(agent_id), api.delete_namespaced_secret),
    ):
        try:
            delete(name=name, namespace=ns, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise _api_error("delete the agent pod", exc) from exc


def pod_phases() -> dict[str, str]:
    """Phase of every agent pod the platform manages, by pod name."""
    ns, api = namespace(), core_api()
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    try:
        pods = api.list_namespaced_pod(
            namespace=ns, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
        )
    except ApiException as exc:
        raise _api_error("list agent pods", exc) from exc
    return {
        str(p.metadata.name if p.metadata else ""): str(p.status.phase if p.status else "Unknown")
        for p in pods.items
    }


def pod_log_tail(*, pod: str, lines: int = 200) -> str:
    ns, api = namespace(), core_api()
    try:
        text: Any = api.read_namespaced_pod_log(
            name=pod, namespace=ns, tail_lines=lines, _request_timeout=REQUEST_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:
            return ""
        raise _api_error("read the pod log", exc) from exc
    return str(text or "")
