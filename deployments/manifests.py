"""Rendering of the Kubernetes objects a preview or a release needs (SPEC §10).

Pure functions: they take plain values, return a list of manifest dicts, and never talk to a
cluster or a repository. Drivers apply what these return; tests validate it against the
Kubernetes schemas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from django.conf import settings

from aiworker.dns_names import dns_label

MANAGED_BY = "aiworker"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PROJECT = "aiworker.dev/project"
LABEL_PROJECT_ID = "aiworker.dev/project-id"
LABEL_TASK = "aiworker.dev/task"
LABEL_ENVIRONMENT = "aiworker.dev/environment"
# Annotations, not labels: an ISO timestamp contains ':' which label values may not.
ANNOTATION_EXPIRES_AT = "aiworker.dev/expires-at"
ANNOTATION_DEPLOYED_AT = "aiworker.dev/deployed-at"

APP_NAME = "app"
SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def preview_namespace(task_id: int) -> str:
    return f"preview-task-{task_id}"


def release_namespace(project_slug: str, environment: str) -> str:
    return dns_label(project_slug, environment)


def preview_host(task_id: int) -> str:
    return f"task-{task_id}.{settings.PREVIEW_DOMAIN}"


def preview_url(task_id: int) -> str:
    return f"https://{preview_host(task_id)}/"


def release_host(project_slug: str, environment: str) -> str:
    return f"{dns_label(project_slug, environment)}.{settings.PREVIEW_DOMAIN}"


def image_at(repository: str, sha: str) -> str:
    return f"{repository}:{sha}"


@dataclass(frozen=True)
class Target:
    """Everything rendering needs, so it can run without a database."""

    namespace: str
    host: str
    image: str
    port: int
    environment: str
    project_slug: str
    project_id: int
    deployed_at: datetime
    task_id: int | None = None
    expires_at: datetime | None = None
    env: dict[str, str] = field(default_factory=dict)
    replicas: int = 1

    @property
    def labels(self) -> dict[str, str]:
        labels = {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_PROJECT: self.project_slug,
            LABEL_PROJECT_ID: str(self.project_id),
            LABEL_ENVIRONMENT: self.environment,
        }
        if self.task_id is not None:
            labels[LABEL_TASK] = str(self.task_id)
        return labels

    @property
    def annotations(self) -> dict[str, str]:
        notes = {ANNOTATION_DEPLOYED_AT: _iso(self.deployed_at)}
        if self.expires_at is not None:
            notes[ANNOTATION_EXPIRES_AT] = _iso(self.expires_at)
        return notes


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def _meta(target: Target, name: str, *, namespaced: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": dict(target.labels),
        "annotations": dict(target.annotations),
    }
    if namespaced:
        meta["namespace"] = target.namespace
    return meta


def render(target: Target) -> list[dict[str, Any]]:
    """The objects of one environment, in the order they must be applied."""
    selector = {"app.kubernetes.io/name": APP_NAME, LABEL_ENVIRONMENT: target.environment}
    pod_labels = {**target.labels, **selector}
    container_env = [{"name": k, "value": str(v)} for k, v in sorted(target.env.items())]
    probe = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3}
    is_preview = target.environment == "preview"
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": _meta(target, target.namespace, namespaced=False),
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _meta(target, "quota"),
            "spec": {
                "hard": {
                    "pods": "10" if is_preview else "50",
                    "requests.cpu": "1" if is_preview else "8",
                    "requests.memory": "1Gi" if is_preview else "16Gi",
                    "limits.cpu": "2" if is_preview else "16",
                    "limits.memory": "2Gi" if is_preview else "32Gi",
                    "services.loadbalancers": "0",
                    "services.nodeports": "0",
                }
            },
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _meta(target, "limits"),
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "500m", "memory": "512Mi"},
                        "defaultRequest": {"cpu": "50m", "memory": "128Mi"},
                        "max": {"cpu": "2", "memory": "2Gi"},
                    }
                ]
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(target, "default-deny-ingress"),
            # Empty podSelector: the policy covers every pod; the only ingress allowed is from
            # the ingress controller's namespace, to the application port.
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {
                                        "kubernetes.io/metadata.name": (
                                            settings.INGRESS_CONTROLLER_NAMESPACE
                                        )
                                    }
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": target.port}],
                    }
                ],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(target, APP_NAME),
            "spec": {
                "replicas": target.replicas,
                "revisionHistoryLimit": 3,
                "progressDeadlineSeconds": 300,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 10001,
                            "runAsGroup": 10001,
                            "fsGroup": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": APP_NAME,
                                "image": target.image,
                                "imagePullPolicy": "IfNotPresent",
                                "ports": [
                                    {
                                        "name": "http",
                                        "containerPort": target.port,
                                        "protocol": "TCP",
                                    }
                                ],
                                "env": container_env,
                                "readinessProbe": {**probe, "initialDelaySeconds": 3},
                                "livenessProbe": {
                                    **probe,
                                    "initialDelaySeconds": 20,
                                    "failureThreshold": 6,
                                },
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "128Mi"},
                                    "limits": {"cpu": "500m", "memory": "512Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": False,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(target, APP_NAME),
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": _meta(target, APP_NAME),
            "spec": {
                **(
                    {"ingressClassName": settings.PREVIEW_INGRESS_CLASS}
                    if settings.PREVIEW_INGRESS_CLASS
                    else {}
                ),
                "rules": [
                    {
                        "host": target.host,
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": APP_NAME, "port": {"name": "http"}}
                                    },
                                }
                            ]
                        },
                    }
                ],
            },
        },
    ]


def preview_target(*, task: Any, image: str, deployed_at: datetime, expires_at: datetime) -> Target:
    project = task.project
    return Target(
        namespace=preview_namespace(task.pk),
        host=preview_host(task.pk),
        image=image,
        port=project.preview_port,
        environment="preview",
        project_slug=project.slug,
        project_id=project.pk,
        task_id=task.pk,
        deployed_at=deployed_at,
        expires_at=expires_at,
        env=clean_env(project.preview_env),
    )


def release_target(*, release: Any, deployed_at: datetime) -> Target:
    project = release.project
    return Target(
        namespace=release_namespace(project.slug, release.environment),
        host=release_host(project.slug, release.environment),
        image=release.image,
        port=project.preview_port,
        environment=release.environment,
        project_slug=project.slug,
        project_id=project.pk,
        deployed_at=deployed_at,
        env=clean_env(project.preview_env),
        replicas=2 if release.environment == "production" else 1,
    )


def clean_env(raw: Any) -> dict[str, str]:
    """The project's preview variables, keeping only names Kubernetes accepts."""
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items() if ENV_NAME_RE.match(str(k))}


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(manifests, sort_keys=True, default_flow_style=False)


def file_name(index: int, manifest: dict[str, Any]) -> str:
    """Stable file name of one object inside its gitops directory."""
    return f"{index:02d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"


def deployed_at_of(rendered_yaml: str) -> datetime | None:
    """The deployed-at annotation of a stored rendering (its first object), if any."""
    try:
        first = next(iter(yaml.safe_load_all(rendered_yaml or "")), None)
    except yaml.YAMLError:
        return None
    text = ((first or {}).get("metadata", {}).get("annotations") or {}).get(ANNOTATION_DEPLOYED_AT)
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
