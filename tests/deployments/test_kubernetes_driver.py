"""The kubernetes driver through the official client against a local stand-in for the API
server (tests/deployments/k8s_standin.py: not a cluster; it implements only the endpoints the
driver uses and validates every body against the Kubernetes 1.33 schemas)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments import services
from deployments.drivers.base import get_driver
from deployments.models import Deployment
from tests import factories
from tests.deployments.k8s_standin import StandInApiServer, write_kubeconfig

KINDS = {
    "namespaces",
    "resourcequotas",
    "limitranges",
    "networkpolicies",
    "deployments",
    "services",
    "ingresses",
}


@pytest.fixture
def cluster(settings, tmp_path):
    with StandInApiServer() as server:
        settings.DEPLOY_DRIVER = "kubernetes"
        settings.KUBECONFIG = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        settings.DEPLOY_ROLLOUT_TIMEOUT = 0.5
        yield server
        assert server.invalid == []


def deploy(task, sha=None):
    return services.preview_deploy(task_id=task.pk, actor=factories.system(), commit_sha=sha)


def test_deploy_creates_every_object_and_waits_for_the_rollout(cluster, preview_task):
    deployment = deploy(preview_task)
    assert deployment.status == "ready", deployment.error
    ns = f"preview-task-{preview_task.pk}"
    assert cluster.namespaces() == [ns]
    assert {p for p, n, _ in cluster.objects if n in ("", ns)} == KINDS
    assert ("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/app/status") in cluster.requests
    container = cluster.get("deployments", ns, "app")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(":" + "a" * 40)


def test_redeploy_replaces_in_place_with_the_new_image(cluster, preview_task):
    deploy(preview_task)
    ns = f"preview-task-{preview_task.pk}"
    first_version = cluster.get("deployments", ns, "app")["metadata"]["resourceVersion"]
    deploy(preview_task, sha="b" * 40)
    app = cluster.get("deployments", ns, "app")
    assert app["metadata"]["resourceVersion"] != first_version
    assert app["metadata"]["generation"] == 2
    assert app["spec"]["template"]["spec"]["containers"][0]["image"].endswith("b" * 40)
    assert cluster.get("services", ns, "app")["spec"]["clusterIP"] == "10.0.0.10"
    assert Deployment.objects.get().status == "ready"


def test_a_failed_rollout_says_why(cluster, preview_task):
    cluster.rollout = "failed"
    deployment = deploy(preview_task)
    assert deployment.status == "failed"
    assert "ProgressDeadlineExceeded" not in deployment.error  # the message, not the code
    assert "timed out progressing" in deployment.error
    assert "ImagePullBackOff" in deployment.error
    kinds = list(preview_task.events.values_list("kind", flat=True))
    assert kinds == ["deploy.started", "deploy.failed"]


def test_a_rollout_that_never_finishes_times_out(cluster, preview_task):
    cluster.rollout = "stuck"
    deployment = deploy(preview_task)
    assert deployment.status == "failed"
    assert "not ready after" in deployment.error


def test_destroy_deletes_the_namespace_and_twice_is_harmless(cluster, preview_task):
    deploy(preview_task)
    assert services.preview_destroy(task_id=preview_task.pk, actor=factories.system()) == 1
    assert cluster.objects == {}
    get_driver().destroy([services.Place("preview", f"preview-task-{preview_task.pk}", "x")])
    assert cluster.objects == {}


def test_expiry_and_gc_work_through_namespaces(cluster, preview_task):
    orphan = factories.make_task(
        project=preview_task.project, state="in_progress", head_sha="c" * 40
    )
    deploy(preview_task)
    deploy(orphan)
    orphan_ns = f"preview-task-{orphan.pk}"
    orphan.delete()
    later = timezone.now() + timedelta(hours=2)
    assert services.resources_garbage_collect(now=later) == 1
    assert cluster.namespaces() == [f"preview-task-{preview_task.pk}"]
    assert orphan_ns not in cluster.namespaces()
    assert services.previews_expire(now=timezone.now() + timedelta(days=8)) == 1
    assert cluster.namespaces() == []


def test_unreachable_cluster_marks_the_deploy_failed(settings, tmp_path, preview_task):
    settings.DEPLOY_DRIVER = "kubernetes"
    # Nothing listens on port 9 (discard) here.
    settings.KUBECONFIG = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    deployment = deploy(preview_task)
    assert deployment.status == "failed"
    assert "unreachable" in deployment.error
