"""The Gitea adapter (SPEC §9). Only projects/services.py and deployments/releases.py call it.

Built on python-gitea: its `Gitea` client gives the session, the token header and the
`_request` transport; the resources it lacks (branches, pull requests, merges, hooks, commit
statuses, reviews, comments) are added below as `Resource` subclasses on that same transport.
Every call carries settings.GITEA_TIMEOUT, and every Gitea failure becomes a domain error that
carries Gitea's own message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from gitea.client.gitea import Gitea
from gitea.resource.resource import Resource
from requests import Response

from aiworker import errors

NOT_CONFIGURED = "Gitea is not configured: set GITEA_URL and GITEA_TOKEN"
PAGE_SIZE = 50
# Hook events the platform consumes (names as Gitea's CreateHookOption expects them).
HOOK_EVENTS = [
    "push",
    "pull_request",
    "pull_request_sync",
    "pull_request_review_approved",
    "pull_request_review_rejected",
    "pull_request_review_comment",
    "pull_request_comment",
    "issue_comment",
    "status",
]


class GiteaUnavailable(errors.Unavailable):
    """Gitea did not answer in time or answered 5xx: worth retrying later."""


# --- typed results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    default_branch: str
    clone_url: str
    html_url: str

    @classmethod
    def of(cls, data: dict[str, Any]) -> Repository:
        return cls(
            owner=(data.get("owner") or {}).get("login", ""),
            name=data.get("name", ""),
            default_branch=data.get("default_branch") or "",
            clone_url=data.get("clone_url") or "",
            html_url=data.get("html_url") or "",
        )


@dataclass(frozen=True)
class Branch:
    name: str
    commit_sha: str

    @classmethod
    def of(cls, data: dict[str, Any]) -> Branch:
        return cls(name=data.get("name", ""), commit_sha=(data.get("commit") or {}).get("id", ""))


@dataclass(frozen=True)
class PullRequest:
    number: int
    state: str  # "open" or "closed"
    merged: bool
    html_url: str
    head_ref: str
    head_sha: str
    base_ref: str
    merge_commit_sha: str
    mergeable: bool
    title: str

    @classmethod
    def of(cls, data: dict[str, Any]) -> PullRequest:
        head = data.get("head") or {}
        base = data.get("base") or {}
        return cls(
            number=int(data.get("number") or 0),
            state=data.get("state") or "",
            merged=bool(data.get("merged")),
            html_url=data.get("html_url") or "",
            head_ref=head.get("ref") or "",
            head_sha=head.get("sha") or "",
            base_ref=base.get("ref") or "",
            merge_commit_sha=data.get("merge_commit_sha") or "",
            mergeable=bool(data.get("mergeable")),
            title=data.get("title") or "",
        )


@dataclass(frozen=True)
class Hook:
    id: int
    url: str
    events: tuple[str, ...]
    active: bool

    @classmethod
    def of(cls, data: dict[str, Any]) -> Hook:
        return cls(
            id=int(data.get("id") or 0),
            url=(data.get("config") or {}).get("url", ""),
            events=tuple(data.get("events") or ()),
            active=bool(data.get("active")),
        )


@dataclass(frozen=True)
class CombinedStatus:
    sha: str
    state: str  # pending, success, error, failure, warning, skipped ("" when no status yet)

    @classmethod
    def of(cls, data: dict[str, Any]) -> CombinedStatus:
        return cls(sha=data.get("sha") or "", state=data.get("state") or "")


@dataclass(frozen=True)
class Comment:
    """A PR conversation comment or a submitted review, as feedback for the agent."""

    id: int
    author: str
    body: str
    kind: str  # "comment" or "review"

    @classmethod
    def of_comment(cls, data: dict[str, Any]) -> Comment:
        return cls(
            id=int(data.get("id") or 0),
            author=(data.get("user") or {}).get("login", ""),
            body=data.get("body") or "",
            kind="comment",
        )

    @classmethod
    def of_review(cls, data: dict[str, Any]) -> Comment:
        state = data.get("state") or ""
        body = data.get("body") or ""
        return cls(
            id=int(data.get("id") or 0),
            author=(data.get("user") or {}).get("login", ""),
            body=f"[{state}] {body}".strip() if state else body,
            kind="review",
        )


# --- transport --------------------------------------------------------------------------------


def _message(response: Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or response.reason
    if isinstance(data, dict):
        return str(data.get("message") or data.get("detail") or data.get("title") or data)[:500]
    return str(data)[:500]


class GiteaClient(Gitea):
    """python-gitea's client with the missing resources and domain errors on its transport."""

    def __init__(self, *, base_url: str, token: str, timeout: float) -> None:
        super().__init__(token=token or None, base_url=base_url)
        self.timeout = timeout
        self.branches = Branches(client=self)
        self.pulls = PullRequests(client=self)
        self.hooks = Hooks(client=self)
        self.statuses = Statuses(client=self)
        self.reviews = Reviews(client=self)
        self.comments = Comments(client=self)
        self.repos = Repositories(client=self)

    def _request(  # type: ignore[override]
        self, method: str, endpoint: str, headers: dict | None = None, **kwargs: Any
    ) -> Response:
        kwargs["timeout"] = self.timeout  # never the library's 30 s default
        what = f"Gitea {method} {endpoint}"
        try:
            return super()._request(method, endpoint, headers=headers, **kwargs)
        except requests.HTTPError as exc:
            response = exc.response
            raise _domain_error(what, response) from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise GiteaUnavailable(f"{what}: no answer ({type(exc).__name__}).") from None


def _domain_error(what: str, response: Response | None) -> errors.DomainError:
    if response is None:
        return GiteaUnavailable(f"{what}: no response.")
    code = response.status_code
    text = f"{what} answered {code}: {_message(response)}"
    exc: errors.DomainError
    if code == 404:
        exc = errors.NotFound(text)
    elif code in (401, 403):
        exc = errors.PermissionDenied(text)
    elif code in (405, 409, 423):
        exc = errors.Conflict(text)
    elif code in (400, 422):
        exc = errors.InvalidInput(text)
    else:
        exc = GiteaUnavailable(text)
    setattr(exc, "status", code)  # noqa: B010  # callers tell 409 "exists" from 423
    return exc


class _Resource(Resource):
    client: GiteaClient

    def _json(self, response: Response) -> Any:
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()

    def _pages(self, endpoint: str, params: dict[str, Any] | None = None) -> Iterator[Any]:
        page = 1
        while True:
            items = self._json(
                self._get(endpoint, params={**(params or {}), "page": page, "limit": PAGE_SIZE})
            )
            yield from items or []
            if not items or len(items) < PAGE_SIZE:
                return
            page += 1


class Repositories(_Resource):
    def get(self, *, owner: str, repo: str) -> Repository:
        return Repository.of(self._json(self._get(f"/repos/{owner}/{repo}")))

    def create(self, *, owner: str, repo: str, default_branch: str, as_user: bool) -> Repository:
        body = {
            "name": repo,
            "auto_init": True,
            "default_branch": default_branch,
            "private": True,
            "description": "Created by AiWorker",
        }
        endpoint = "/user/repos" if as_user else f"/orgs/{owner}/repos"
        return Repository.of(self._json(self._post(endpoint, json=body)))

    def current_login(self) -> str:
        return str(self._json(self._get("/user")).get("login", ""))


class Branches(_Resource):
    def get(self, *, owner: str, repo: str, branch: str) -> Branch:
        # Only for branch names without "/" (main, staging, production): Gitea and the API
        # description disagree on how a slash in a path segment is written.
        return Branch.of(self._json(self._get(f"/repos/{owner}/{repo}/branches/{branch}")))

    def create(self, *, owner: str, repo: str, name: str, base: str) -> Branch:
        body = {"new_branch_name": name, "old_ref_name": f"refs/heads/{base}"}
        return Branch.of(self._json(self._post(f"/repos/{owner}/{repo}/branches", json=body)))


class PullRequests(_Resource):
    def get(self, *, owner: str, repo: str, number: int) -> PullRequest:
        return PullRequest.of(self._json(self._get(f"/repos/{owner}/{repo}/pulls/{number}")))

    def create(
        self, *, owner: str, repo: str, head: str, base: str, title: str, body: str
    ) -> PullRequest:
        payload = {"head": head, "base": base, "title": title, "body": body}
        return PullRequest.of(self._json(self._post(f"/repos/{owner}/{repo}/pulls", json=payload)))

    def find_open(self, *, owner: str, repo: str, head: str, base: str) -> PullRequest | None:
        """The open PR from `head` into `base`, if any (what makes "open PR" idempotent)."""
        params = {"state": "open", "base_branch": base, "sort": "recentupdate"}
        for data in self._pages(f"/repos/{owner}/{repo}/pulls", params):
            pr = PullRequest.of(data)
            if pr.head_ref == head and pr.base_ref == base:
                return pr
        return None

    def merge(self, *, owner: str, repo: str, number: int, message: str = "") -> None:
        body: dict[str, Any] = {"do": "merge"}
        if message:
            body["merge_message_field"] = message
        self._post(f"/repos/{owner}/{repo}/pulls/{number}/merge", json=body)

    def close(self, *, owner: str, repo: str, number: int) -> PullRequest:
        response = self._patch(f"/repos/{owner}/{repo}/pulls/{number}", json={"state": "closed"})
        return PullRequest.of(self._json(response))


class Hooks(_Resource):
    def list(self, *, owner: str, repo: str) -> list[Hook]:
        return [Hook.of(h) for h in self._pages(f"/repos/{owner}/{repo}/hooks")]

    def create(self, *, owner: str, repo: str, url: str, secret: str) -> Hook:
        body = {
            "type": "gitea",
            "active": True,
            "branch_filter": "*",
            "events": HOOK_EVENTS,
            "config": {"url": url, "content_type": "json", "secret": secret},
        }
        return Hook.of(self._json(self._post(f"/repos/{owner}/{repo}/hooks", json=body)))


class Statuses(_Resource):
    def combined(self, *, owner: str, repo: str, sha: str) -> CombinedStatus:
        return CombinedStatus.of(
            self._json(self._get(f"/repos/{owner}/{repo}/commits/{sha}/status"))
        )


class Reviews(_Resource):
    def list(self, *, owner: str, repo: str, number: int) -> list[Comment]:
        endpoint = f"/repos/{owner}/{repo}/pulls/{number}/reviews"
        return [Comment.of_review(r) for r in self._pages(endpoint) if (r.get("body") or "")]


class Comments(_Resource):
    def list(self, *, owner: str, repo: str, number: int) -> list[Comment]:
        endpoint = f"/repos/{owner}/{repo}/issues/{number}/comments"
        return [Comment.of_comment(c) for c in self._json(self._get(endpoint)) or []]

    def create(self, *, owner: str, repo: str, number: int, body: str) -> Comment:
        endpoint = f"/repos/{owner}/{repo}/issues/{number}/comments"
        return Comment.of_comment(self._json(self._post(endpoint, json={"body": body})))


def client() -> GiteaClient:
    """A client for the configured Gitea; use it as a context manager."""
    if not settings.GITEA_URL:
        raise errors.NotConfigured(NOT_CONFIGURED)
    return GiteaClient(
        base_url=settings.GITEA_URL, token=settings.GITEA_TOKEN, timeout=settings.GITEA_TIMEOUT
    )
