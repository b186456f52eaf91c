"""Every rendered manifest validates strictly against the Kubernetes 1.33 schemas."""

from datetime import UTC, datetime, timedelta

import kubernetes_validate
import pytest

from deployments import manifests as m
from deployments.models import Release
from tests import factories

K8S = "1.33.0"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def validate_all(docs):
    for doc in docs:
        kubernetes_validate.validate(doc, K8S, strict=True)


def test_preview_renders_every_object_with_labels_and_expiry(preview_task, settings):
    settings.PREVIEW_DOMAIN = "preview.example.test"
    expires = NOW + timedelta(days=7)
    docs = m.render(
        m.preview_target(
            task=preview_task,
            image="registry.example.test/acme/shop:" + "a" * 40,
            deployed_at=NOW,
            expires_at=expires,
        )
    )
    validate_all(docs)
    kinds = [d["kind"] for d in docs]
    assert kinds == [
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
        "Deployment",
        "Service",
        "Ingress",
    ]
    ns = f"preview-task-{preview_task.pk}"
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "aiworker"
        assert labels["aiworker.dev/project"] == preview_task.project.slug
        assert labels["aiworker.dev/task"] == str(preview_task.pk)
        assert doc["metadata"]["annotations"]["aiworker.dev/expires-at"] == expires.isoformat()
        assert doc["metadata"].get("namespace", ns) == ns
    by_kind = {d["kind"]: d for d in docs}
    assert by_kind["Namespace"]["metadata"]["name"] == ns
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"].endswith(":" + "a" * 40)
    assert container["ports"][0]["containerPort"] == 8080
    assert container["env"] == [{"name": "DJANGO_DEBUG", "value": "1"}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["readinessProbe"] and container["livenessProbe"]
    assert container["resources"]["limits"]
    rule = by_kind["Ingress"]["spec"]["rules"][0]
    assert rule["host"] == f"task-{preview_task.pk}.preview.example.test"
    policy = by_kind["NetworkPolicy"]["spec"]
    assert policy["podSelector"] == {} and policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": settings.INGRESS_CONTROLLER_NAMESPACE
    }


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_release_renders_valid_objects_in_its_namespace(db, environment):
    project = factories.make_project(slug="x" * 60, image_repository="reg/x")
    release = Release.objects.create(
        project=project, environment=environment, image="reg/x:" + "b" * 40
    )
    docs = m.render(m.release_target(release=release, deployed_at=NOW))
    validate_all(docs)
    namespace = docs[0]["metadata"]["name"]
    assert len(namespace) <= 63 and namespace.endswith(f"-{environment}")
    assert all("aiworker.dev/task" not in d["metadata"]["labels"] for d in docs)
    assert "aiworker.dev/expires-at" not in docs[0]["metadata"]["annotations"]


def test_a_broken_manifest_is_refused_by_the_validator(preview_task):
    """Guards the guard: strict validation does reject an unknown field."""
    docs = m.render(
        m.preview_target(task=preview_task, image="r/x:1234567", deployed_at=NOW, expires_at=NOW)
    )
    docs[4]["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_all(docs)
