"""The gitops driver waits for Argo CD: a preview is ready only when its Application is Synced
at the pushed commit and Healthy.

No Argo CD can run here, so its API is a stand-in: an HTTP server on 127.0.0.1 answering the
one call the driver makes (GET an Application through the official Kubernetes client). The
Application it serves is the one k8s/argocd's ApplicationSet generates for the directory in
the real gitops repository (tmp_path), with a status the test chooses, and every object it
serves validates strictly against Argo CD's Application CRD (tests/k8s/argocd_schema.py), so
the fields the driver reads are the fields Argo CD writes.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from deployments import services
from deployments.drivers.argocd import application_name, state_of
from deployments.drivers.base import Place
from deployments.models import Deployment
from tasks.models import TaskEvent
from tests import factories
from tests.deployments.k8s_standin import write_kubeconfig
from tests.k8s import argocd_schema, kustomize
from tests.k8s.test_manifests import ROOT, _application_for

APP_PATH = re.compile(r"^/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/([a-z0-9-]+)$")


class StandInArgoCD:
    """Serves Applications for directories present in the gitops repository's branch."""

    def __init__(self, repo_path: str) -> None:
        self.repo_path = repo_path
        self.outcome = "healthy"  # healthy, degraded, sync_failed, stale (synced at an old sha)
        self.reads = 0
        self.served: list[dict[str, Any]] = []
        sets = kustomize.build(ROOT / "argocd")
        self.previews = next(d for d in sets if d["metadata"]["name"] == "aiworker-previews")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _git(self, *args: str) -> str:
        done = subprocess.run(["git", "--git-dir", self.repo_path, *args], capture_output=True)
        return done.stdout.decode().strip()

    def application(self, name: str) -> dict[str, Any] | None:
        directory = f"preview/{name}"
        if not self._git("ls-tree", "main", directory):
            return None
        app = _application_for(self.previews, directory)
        head = self._git("rev-parse", "main")
        synced = "0" * 40 if self.outcome == "stale" else head
        health = {"healthy": "Healthy", "degraded": "Degraded"}.get(self.outcome, "Progressing")
        app["status"] = {
            "sync": {"status": "Synced", "revision": synced},
            "health": {"status": health, "message": "ImagePullBackOff: no such image"}
            if health == "Degraded"
            else {"status": health},
        }
        if self.outcome == "sync_failed":
            app["status"]["sync"]["status"] = "OutOfSync"
            app["status"]["operationState"] = {
                "phase": "Failed",
                "message": "one or more objects failed to apply",
                "startedAt": "2026-12-03T08:00:00Z",
                "operation": {"sync": {"revision": head}},
                "syncResult": {"revision": head},
            }
        argocd_schema.validate(app)
        self.served.append(app)
        return app

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin.reads += 1
                match = APP_PATH.match(self.path.split("?")[0])
                app = standin.application(match.group(1)) if match else None
                code = 200 if app else 404
                body = app or {"kind": "Status", "apiVersion": "v1", "code": 404}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def argocd(gitops, settings, tmp_path):
    standin = StandInArgoCD(gitops.url)
    settings.KUBECONFIG = write_kubeconfig(tmp_path / "kubeconfig", standin.url)
    settings.GITOPS_ARGOCD_NAMESPACE = "argocd"
    settings.DEPLOY_ROLLOUT_TIMEOUT = 1.0
    yield standin
    standin.close()


def deploy(task):
    return services.preview_deploy(task_id=task.pk, actor=factories.system())


def test_ready_only_when_argo_cd_synced_the_commit_and_it_is_healthy(argocd, preview_task):
    deployment = deploy(preview_task)
    assert deployment.status == "ready", deployment.error
    assert argocd.served and argocd.served[-1]["status"]["health"]["status"] == "Healthy"
    assert TaskEvent.objects.filter(task=preview_task, kind="deploy.completed").exists()


@pytest.mark.parametrize(
    ("outcome", "why"),
    [
        ("degraded", "Degraded: ImagePullBackOff"),
        ("sync_failed", "sync Failed: one or more objects failed to apply"),
        ("stale", "not ready after 1s"),
    ],
)
def test_degraded_failed_or_stale_is_a_failure_with_argo_cds_reason(
    argocd, preview_task, outcome, why
):
    argocd.outcome = outcome
    deployment = deploy(preview_task)
    assert deployment.status == Deployment.Status.FAILED
    assert why in deployment.error
    event = TaskEvent.objects.get(task=preview_task, kind="deploy.failed")
    assert why in event.message


def test_status_reads_the_application(argocd, preview_task):
    from deployments.drivers.base import get_driver

    deployment = deploy(preview_task)
    driver = get_driver()
    assert driver.status(Place.of(deployment)) == "ready"
    argocd.outcome = "degraded"
    assert driver.status(Place.of(deployment)) == "failed"
    gone = Place(environment="preview", namespace="preview-task-0", project_slug="x")
    assert driver.status(gone) == "absent"


def test_without_argo_cd_a_commit_is_all_the_driver_reports(gitops, preview_task):
    assert deploy(preview_task).status == "ready"


def test_application_names_match_the_application_sets():
    assert application_name(Place("preview", "preview-task-7", "shop")) == "preview-task-7"
    assert application_name(Place("staging", "shop-staging", "shop")) == "shop-staging"
    assert state_of(None).state == "absent"
    assert state_of({"status": {"sync": {"status": "OutOfSync"}}}).state == "deploying"
