"""A stand-in for the Kubernetes API server (no cluster can run on this machine).

It is NOT Kubernetes: an HTTP server on 127.0.0.1 (port chosen by the OS) implementing only
the endpoints the kubernetes driver calls — create/read/replace of the seven kinds a preview
uses, reading a Deployment's status, listing namespaces and pods by label, and deleting a
namespace with everything inside it. Every body it receives is validated strictly against the
Kubernetes 1.33 schemas with kubernetes-validate; an invalid one is answered 422 and recorded
in `invalid`, so a test can assert none was sent. `rollout` decides what a new Deployment's
status says: "ready", "stuck" (never ready) or "failed" (ProgressDeadlineExceeded, image pull
error on its pod).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import kubernetes_validate

K8S = "1.33.0"
PATH_RE = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[a-z0-9.]+)/v1)"
    r"(?:/namespaces/(?P<ns>[a-z0-9-]+))?/(?P<plural>[a-z]+)(?:/(?P<name>[a-z0-9.-]+))?"
    r"(?P<status>/status)?$"
)


class StandInApiServer:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, ns, name)
        self.requests: list[tuple[str, str]] = []
        self.invalid: list[str] = []
        self.rollout = "ready"
        self._versions = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> StandInApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def namespaces(self) -> list[str]:
        return sorted(name for plural, _, name in self.objects if plural == "namespaces")

    def get(self, plural: str, ns: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, ns, name))

    # --- request handling ---------------------------------------------------------------------

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        parsed = urlparse(path)
        self.requests.append((method, parsed.path))
        match = PATH_RE.match(parsed.path)
        if not match:
            return 404, _status(404, f"stand-in has no endpoint {parsed.path}")
        plural, ns, name = match["plural"], match["ns"] or "", match["name"] or ""
        if plural == "namespaces" and not name and ns:
            # /api/v1/namespaces/<name>: the regex read the name as a namespace
            plural, ns, name = "namespaces", "", ns
        query = parse_qs(parsed.query)
        with self._lock:
            if method == "GET" and not name:
                return 200, self._list(plural, ns, query.get("labelSelector", [""])[0])
            if method == "GET":
                found = self.objects.get((plural, ns, name))
                return (200, found) if found else (404, _status(404, f"{plural} {name} not found"))
            if method == "DELETE":
                if (plural, ns, name) not in self.objects:
                    return 404, _status(404, f"{plural} {name} not found")
                del self.objects[(plural, ns, name)]
                if plural == "namespaces":
                    for key in [k for k in self.objects if k[1] == name]:
                        del self.objects[key]
                return 200, _status(200, "deleted")
            try:
                document = json.loads(body)
                kubernetes_validate.validate(document, K8S, strict=True)
            except (ValueError, kubernetes_validate.ValidationError) as exc:
                self.invalid.append(f"{method} {parsed.path}: {exc}")
                return 422, _status(422, f"invalid: {exc}")
            return self._write(method, plural, ns, name, document)

    def _write(
        self, method: str, plural: str, ns: str, name: str, document: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        meta = document["metadata"]
        if method == "POST":
            key = (plural, ns, meta["name"])
            if key in self.objects:
                return 409, _status(409, f"{plural} {meta['name']} already exists")
            if ns and ("namespaces", "", ns) not in self.objects:
                return 404, _status(404, f"namespace {ns} not found")
            meta["generation"] = 1
        else:
            key = (plural, ns, name)
            current = self.objects.get(key)
            if current is None:
                return 404, _status(404, f"{plural} {name} not found")
            if meta.get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return 409, _status(409, "the object has been modified (resourceVersion)")
            meta["generation"] = current["metadata"]["generation"] + 1
        meta["resourceVersion"] = str(next(self._versions))
        if plural == "deployments":
            document["status"] = self._deployment_status(document)
        if plural == "services":
            document["spec"].setdefault("clusterIP", "10.0.0.10")
        self.objects[key] = document
        return (201 if method == "POST" else 200), document

    def _deployment_status(self, document: dict[str, Any]) -> dict[str, Any]:
        replicas = document["spec"].get("replicas", 1)
        generation = document["metadata"]["generation"]
        if self.rollout == "ready":
            return {
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": replicas,
                "readyReplicas": replicas,
            }
        status: dict[str, Any] = {"observedGeneration": generation, "replicas": replicas}
        if self.rollout == "failed":
            status["conditions"] = [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": 'ReplicaSet "app-1" has timed out progressing.',
                }
            ]
        return status

    def _list(self, plural: str, ns: str, selector: str) -> dict[str, Any]:
        wanted = dict(part.split("=", 1) for part in selector.split(",") if part)
        if plural == "pods":
            items = self._pods(ns)
        else:
            items = [
                obj for (p, n, _), obj in sorted(self.objects.items()) if p == plural and n == ns
            ]
        items = [
            obj
            for obj in items
            if all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}

    def _pods(self, ns: str) -> list[dict[str, Any]]:
        if self.rollout != "failed" or ("deployments", ns, "app") not in self.objects:
            return []
        return [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "app-1-abcde",
                    "namespace": ns,
                    "labels": {"app.kubernetes.io/name": "app"},
                },
                "status": {
                    "containerStatuses": [
                        {
                            "name": "app",
                            "image": "x",
                            "imageID": "",
                            "ready": False,
                            "restartCount": 0,
                            "state": {
                                "waiting": {
                                    "reason": "ImagePullBackOff",
                                    "message": "Back-off pulling image",
                                }
                            },
                        }
                    ]
                },
            }
        ]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                code, payload = server.handle(self.command, self.path, self.rfile.read(length))
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _status(code: int, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "message": message,
    }


def write_kubeconfig(path: Any, server_url: str) -> str:
    """A kubeconfig pointing the official client at a stand-in on loopback; its bearer token is
    random per test (the stand-ins accept any)."""
    import secrets

    import yaml

    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "standin",
                "clusters": [{"name": "standin", "cluster": {"server": server_url}}],
                "users": [{"name": "u", "user": {"token": secrets.token_hex(8)}}],
                "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "u"}}],
            }
        )
    )
    return str(path)
