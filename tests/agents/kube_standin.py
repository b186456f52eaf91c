"""A stand-in Kubernetes API server (no cluster can run here): the core/v1 pod and secret
endpoints the agent-pod adapter uses, served over real HTTP on 127.0.0.1 at a free port, so
the official `kubernetes` client, its kubeconfig loading and its (de)serialisation all run."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

PATH = re.compile(
    r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<kind>pods|secrets)(?:/(?P<name>[^/]+))?(?P<log>/log)?$"
)


class KubeStandIn:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.logs: dict[str, str] = {}
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any, content_type: str = "application/json"):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urlparse(self.path)
                standin.requests.append((method, url.path))
                m = PATH.match(url.path)
                if not m:
                    return self._answer(404, _status(404, "NotFound"))
                ns, kind, name = m["ns"], m["kind"], m["name"]
                key = (ns, kind, name or "")
                if method == "POST":
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    key = (ns, kind, body["metadata"]["name"])
                    if key in standin.objects:
                        return self._answer(409, _status(409, "AlreadyExists"))
                    body["metadata"].setdefault("namespace", ns)
                    if kind == "pods":
                        body["status"] = {"phase": "Pending"}
                    standin.objects[key] = body
                    return self._answer(201, body)
                if method == "DELETE":
                    if key not in standin.objects:
                        return self._answer(404, _status(404, "NotFound"))
                    return self._answer(200, standin.objects.pop(key))
                if m["log"]:
                    if key not in standin.objects:
                        return self._answer(404, _status(404, "NotFound"))
                    lines = standin.logs.get(name or "", "").splitlines()
                    tail = int(parse_qs(url.query).get("tailLines", ["0"])[0]) or len(lines)
                    return self._answer(200, "\n".join(lines[-tail:]), "text/plain")
                if name:
                    if key not in standin.objects:
                        return self._answer(404, _status(404, "NotFound"))
                    return self._answer(200, standin.objects[key])
                selector = parse_qs(url.query).get("labelSelector", [""])[0]
                wanted = dict(p.split("=", 1) for p in selector.split(",") if p)
                items = [
                    o
                    for (n, k, _), o in standin.objects.items()
                    if n == ns
                    and k == kind
                    and all(o["metadata"].get("labels", {}).get(a) == b for a, b in wanted.items())
                ]
                kind_name = "PodList" if kind == "pods" else "SecretList"
                return self._answer(
                    200, {"kind": kind_name, "apiVersion": "v1", "metadata": {}, "items": items}
                )

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> KubeStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def pods(self, ns: str) -> dict[str, dict[str, Any]]:
        return {n: o for (s, k, n), o in self.objects.items() if s == ns and k == "pods"}

    def secrets(self, ns: str) -> dict[str, dict[str, Any]]:
        return {n: o for (s, k, n), o in self.objects.items() if s == ns and k == "secrets"}

    def set_phase(self, ns: str, name: str, phase: str) -> None:
        self.objects[(ns, "pods", name)]["status"] = {"phase": phase}

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
                    "users": [{"name": "tests", "user": {"token": "stand-in"}}],
                    "contexts": [
                        {"name": "tests", "context": {"cluster": "standin", "user": "tests"}}
                    ],
                    "current-context": "tests",
                }
            )
        )
        return path


def _status(code: int, reason: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "code": code,
    }
