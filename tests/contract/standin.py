"""A STAND-IN for a Gitea server (no Gitea runs on this machine): a small stateful HTTP server
that keeps repositories, branches, pull requests, hooks, statuses and comments in memory.

It never sees the adapter directly: tests put Prism (tests/contract/prism.py) in front of it
as a validating proxy, so every request the adapter sends and every answer this stand-in gives
is checked against Gitea's API description. Only the paths the adapter uses are implemented.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api/v1"
LOGIN = "aiworker-bot"
NOW = "2026-01-01T00:00:00Z"


def _sha(*parts: Any) -> str:
    return hashlib.sha1(" ".join(map(str, parts)).encode()).hexdigest()


@dataclass
class Repo:
    owner: str
    name: str
    default_branch: str
    branches: dict[str, str] = field(default_factory=dict)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)  # sha -> combined state


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int = 0  # answer this status instead of the normal answer
    delay: float = 0.0  # or: do the normal work, then answer this late (a client timeout)


class GiteaStandIn:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- test controls ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GiteaStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.repos: dict[tuple[str, str], Repo] = {}
            self.faults: list[Fault] = []
            self.conflicts: set[int] = set()  # PR numbers whose merge conflicts
            self.log: list[tuple[str, str, Any]] = []
            self.next_id = 1

    def add_repo(self, owner: str, name: str, *, branches: tuple[str, ...] = ()) -> Repo:
        with self.lock:
            repo = Repo(owner=owner, name=name, default_branch="main")
            repo.branches["main"] = _sha(owner, name, "init")
            for branch in branches:
                repo.branches[branch] = repo.branches["main"]
            self.repos[(owner.lower(), name.lower())] = repo
            return repo

    def push(self, owner: str, name: str, branch: str) -> str:
        with self.lock:
            repo = self.repos[(owner.lower(), name.lower())]
            repo.branches[branch] = _sha(branch, repo.branches.get(branch), time.time_ns())
            return repo.branches[branch]

    def fail_next(self, method: str, pattern: str, *, status: int = 0, delay: float = 0.0) -> None:
        with self.lock:
            self.faults.append(Fault(method, re.compile(pattern), status=status, delay=delay))

    def requests(self, method: str | None = None, pattern: str = "") -> list[tuple[str, str, Any]]:
        return [
            r for r in self.log if (method is None or r[0] == method) and re.search(pattern, r[1])
        ]

    # --- the API ------------------------------------------------------------------------------

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def handle(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, float]:
        with self.lock:
            self.log.append((method, path, body))
            delay = 0.0
            for fault in list(self.faults):
                if fault.method == method and fault.pattern.search(path):
                    self.faults.remove(fault)
                    if fault.status:
                        return fault.status, {"message": "stand-in fault", "url": path}, 0.0
                    delay = fault.delay
            status, data = self._route(method, path.removeprefix(PREFIX), query, body)
            return status, data, delay

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/user":
            return 200, {"id": 1, "login": LOGIN}
        if method == "POST" and path == "/user/repos":
            return self._create_repo(LOGIN, body)
        match = re.fullmatch(r"/orgs/([^/]+)/repos", path)
        if method == "POST" and match:
            return self._create_repo(match.group(1), body)
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if not match:
            return 404, {"message": "not found", "url": path}
        repo = self.repos.get((match.group(1).lower(), match.group(2).lower()))
        if repo is None:
            return 404, {"message": "repository does not exist", "url": path}
        return self._repo_route(repo, method, match.group(3) or "", query, body)

    def _repo_route(
        self, repo: Repo, method: str, rest: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        if rest == "" and method == "GET":
            return 200, self._repo_json(repo)
        if rest == "/branches" and method == "POST":
            name, base = body["new_branch_name"], body.get("old_ref_name", "")
            base = base.removeprefix("refs/heads/") or body.get("old_branch_name") or "main"
            if name in repo.branches:
                return 409, {"message": f"branch {name} already exists"}
            if base not in repo.branches:
                return 404, {"message": f"branch {base} does not exist"}
            repo.branches[name] = repo.branches[base]
            return 201, self._branch_json(name, repo.branches[name])
        match = re.fullmatch(r"/branches/(.+)", rest)
        if match and method == "GET":
            name = match.group(1)
            if name not in repo.branches:
                return 404, {"message": "branch not found"}
            return 200, self._branch_json(name, repo.branches[name])
        if rest == "/pulls" and method == "GET":
            state, base = query.get("state", "open"), query.get("base_branch")
            items = [
                p
                for p in repo.pulls
                if (state == "all" or p["state"] == state) and (not base or p["base"] == base)
            ]
            page, limit = int(query.get("page", 1)), int(query.get("limit", 30))
            items = items[(page - 1) * limit : page * limit]
            return 200, [self._pull_json(repo, p) for p in items]
        if rest == "/pulls" and method == "POST":
            return self._create_pull(repo, body)
        match = re.fullmatch(r"/pulls/(\d+)(/merge|/reviews)?", rest)
        if match:
            pr = next((p for p in repo.pulls if p["number"] == int(match.group(1))), None)
            if pr is None:
                return 404, {"message": "pull request does not exist"}
            return self._pull_route(repo, pr, method, match.group(2) or "", body)
        if rest == "/hooks" and method == "GET":
            return 200, repo.hooks
        if rest == "/hooks" and method == "POST":
            hook = {
                "id": self._id(),
                "type": body["type"],
                "active": bool(body.get("active")),
                "events": body.get("events", []),
                # Gitea never returns the secret.
                "config": {"url": body["config"]["url"], "content_type": "json"},
                "created_at": NOW,
                "updated_at": NOW,
            }
            repo.hooks.append(hook)
            return 201, hook
        match = re.fullmatch(r"/commits/([0-9a-f]+)/status", rest)
        if match and method == "GET":
            sha = match.group(1)
            return 200, {"sha": sha, "state": repo.statuses.get(sha, ""), "total_count": 0}
        match = re.fullmatch(r"/issues/(\d+)/comments", rest)
        if match:
            number = int(match.group(1))
            if method == "GET":
                return 200, repo.comments.get(number, [])
            comment = {
                "id": self._id(),
                "body": body["body"],
                "user": {"id": 1, "login": LOGIN},
                "created_at": NOW,
            }
            repo.comments.setdefault(number, []).append(comment)
            return 201, comment
        return 404, {"message": f"stand-in has no {method} {rest}"}

    def _create_repo(self, owner: str, body: dict[str, Any]) -> tuple[int, Any]:
        if (owner.lower(), body["name"].lower()) in self.repos:
            return 409, {"message": "repository already exists"}
        repo = self.add_repo(owner, body["name"])
        repo.default_branch = body.get("default_branch") or "main"
        repo.branches = {repo.default_branch: repo.branches.pop("main")}
        return 201, self._repo_json(repo)

    def _create_pull(self, repo: Repo, body: dict[str, Any]) -> tuple[int, Any]:
        head, base = body["head"], body["base"]
        if head not in repo.branches or base not in repo.branches:
            return 404, {"message": "head or base branch does not exist"}
        for p in repo.pulls:
            if p["head"] == head and p["base"] == base and p["state"] == "open":
                return 409, {
                    "message": f"pull request already exists for these targets [id: {p['number']}]"
                }
        if repo.branches[head] == repo.branches[base]:
            return 422, {"message": "There are no changes between the head and the base"}
        pr = {
            "id": self._id(),
            "number": len(repo.pulls) + 1,
            "title": body.get("title", ""),
            "body": body.get("body", ""),
            "head": head,
            "base": base,
            "state": "open",
            "merged": False,
            "merge_commit_sha": "",
        }
        repo.pulls.append(pr)
        return 201, self._pull_json(repo, pr)

    def _pull_route(
        self, repo: Repo, pr: dict[str, Any], method: str, rest: str, body: Any
    ) -> tuple[int, Any]:
        if rest == "" and method == "GET":
            return 200, self._pull_json(repo, pr)
        if rest == "" and method == "PATCH":
            if body.get("state") in ("open", "closed"):
                pr["state"] = body["state"]
            return 201, self._pull_json(repo, pr)
        if rest == "/reviews" and method == "GET":
            return 200, repo.reviews.get(pr["number"], [])
        if rest == "/merge" and method == "POST":
            if pr["merged"] or pr["state"] != "open":
                return 405, {"message": "The PR is not mergeable (already merged or closed)"}
            if pr["number"] in self.conflicts:
                return 409, {"message": "Merge conflict: the head branch conflicts with base"}
            sha = _sha("merge", pr["number"], repo.branches[pr["base"]], repo.branches[pr["head"]])
            repo.branches[pr["base"]] = sha
            pr.update(merged=True, state="closed", merge_commit_sha=sha)
            return 200, None
        return 404, {"message": "not found"}

    # --- JSON shapes (valid against the description; Prism checks every one) -------------------

    def _repo_json(self, repo: Repo) -> dict[str, Any]:
        return {
            "id": abs(hash((repo.owner, repo.name))) % 10**6,
            "name": repo.name,
            "full_name": f"{repo.owner}/{repo.name}",
            "owner": {"id": 1, "login": repo.owner},
            "default_branch": repo.default_branch,
            "clone_url": f"http://gitea.invalid/{repo.owner}/{repo.name}.git",
            "html_url": f"http://gitea.invalid/{repo.owner}/{repo.name}",
            "private": True,
        }

    def _branch_json(self, name: str, sha: str) -> dict[str, Any]:
        return {"name": name, "commit": {"id": sha, "message": "stand-in"}, "protected": False}

    def _pull_json(self, repo: Repo, pr: dict[str, Any]) -> dict[str, Any]:
        html = f"http://gitea.invalid/{repo.owner}/{repo.name}/pulls/{pr['number']}"
        data = {
            "id": pr["id"],
            "number": pr["number"],
            "title": pr["title"],
            "body": pr["body"],
            "state": pr["state"],
            "merged": pr["merged"],
            "mergeable": pr["number"] not in self.conflicts,
            "html_url": html,
            "url": html,
            "head": {"ref": pr["head"], "label": pr["head"], "sha": repo.branches[pr["head"]]},
            "base": {"ref": pr["base"], "label": pr["base"], "sha": repo.branches[pr["base"]]},
        }
        if pr["merged"]:
            data["merge_commit_sha"] = pr["merge_commit_sha"]
            data["merged_at"] = NOW
        return data


def _handler_for(standin: GiteaStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, data, delay = standin.handle(self.command, parts.path, query, body)
            if delay:
                time.sleep(delay)
            payload = b"" if data is None else json.dumps(data).encode()
            self.send_response(status)
            if payload:  # Gitea answers an empty 200 (merge) without a content type
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return Handler
