"""The Gitea adapter (SPEC §9). Only the services call it
(projects/services.py, tasks/services/forge.py, deployments/releases.py).

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
from projects.forges import base

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
class PullRequest(base.PullRequest):
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


# --- the forge --------------------------------------------------------------------------------


class GiteaForge:
    """The forge interface (projects/forges/base.py) on a project's Gitea repository."""

    name = "gitea"

    def __init__(self, project: Any) -> None:
        self.project = project

    def _repo(self) -> tuple[str, str]:
        if not settings.GITEA_URL:  # the first thing to fix, before the project's fields
            raise errors.NotConfigured(NOT_CONFIGURED)
        if not (self.project.gitea_owner and self.project.gitea_repo):
            raise errors.InvalidInput(
                f"Project {self.project.slug} has no Gitea repository: set its owner and "
                "repository.",
                fields={"gitea_repo": ["Set gitea_owner and gitea_repo."]},
            )
        return self.project.gitea_owner, self.project.gitea_repo

    def clone_url(self) -> str | None:
        if not (settings.GITEA_URL and self.project.gitea_owner and self.project.gitea_repo):
            return None
        owner, repo = self._repo()
        return f"{settings.GITEA_URL.rstrip('/')}/{owner}/{repo}.git"

    def ensure_repository(self) -> None:
        owner, repo = self._repo()
        with client() as gitea:
            try:
                gitea.repos.get(owner=owner, repo=repo)
            except errors.NotFound:
                as_user = gitea.repos.current_login().lower() == owner.lower()
                gitea.repos.create(
                    owner=owner,
                    repo=repo,
                    default_branch=self.project.default_branch,
                    as_user=as_user,
                )
            for branch in (self.project.staging_branch, self.project.production_branch):
                _ensure_branch(gitea, owner, repo, name=branch, base=self.project.default_branch)

    def create_branch(self, *, name: str, base: str) -> bool:
        owner, repo = self._repo()
        with client() as gitea:
            return _ensure_branch(gitea, owner, repo, name=name, base=base)

    def find_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        owner, repo = self._repo()
        with client() as gitea:
            return gitea.pulls.find_open(owner=owner, repo=repo, head=head, base=base)

    def open_pull_request(
        self, *, head: str, base: str, title: str, body: str
    ) -> tuple[PullRequest, bool]:
        """Looks for the open PR by head and base before it creates one: a retry after a
        timeout (the first request may have reached Gitea) never makes a second PR."""
        owner, repo = self._repo()
        with client() as gitea:
            pr = gitea.pulls.find_open(owner=owner, repo=repo, head=head, base=base)
            if pr is not None:
                return pr, False
            try:
                pr = gitea.pulls.create(
                    owner=owner, repo=repo, head=head, base=base, title=title, body=body
                )
            except errors.Conflict:
                # Gitea says one exists already (opened by a request we saw time out).
                pr = gitea.pulls.find_open(owner=owner, repo=repo, head=head, base=base)
                if pr is None:
                    raise
                return pr, False
            return pr, True

    def get_pull_request(self, *, number: int) -> PullRequest:
        owner, repo = self._repo()
        with client() as gitea:
            return gitea.pulls.get(owner=owner, repo=repo, number=number)

    def merge_pull_request(self, *, number: int, message: str) -> PullRequest:
        owner, repo = self._repo()
        with client() as gitea:
            pr = gitea.pulls.get(owner=owner, repo=repo, number=number)
            if pr.merged:
                return pr
            if pr.state != "open":
                raise errors.Conflict(f"Pull request #{pr.number} is closed without a merge.")
            gitea.pulls.merge(owner=owner, repo=repo, number=pr.number, message=message)
            return gitea.pulls.get(owner=owner, repo=repo, number=pr.number)

    def bring_up_to_date(self, *, head: str, base: str, title: str) -> str:
        """Through a PR `head` -> `base` merged at once."""
        owner, repo = self._repo()
        with client() as gitea:
            pr = gitea.pulls.find_open(owner=owner, repo=repo, head=head, base=base)
            if pr is None:
                try:
                    pr = gitea.pulls.create(
                        owner=owner, repo=repo, head=head, base=base, title=title, body=title
                    )
                except (errors.InvalidInput, errors.Conflict):
                    pr = None  # Gitea refuses a PR with nothing to bring: `base` has `head`
            if pr is not None:
                gitea.pulls.merge(owner=owner, repo=repo, number=pr.number, message=title)
            return gitea.branches.get(owner=owner, repo=repo, branch=base).commit_sha

    def comment(self, *, number: int, body: str) -> None:
        owner, repo = self._repo()
        with client() as gitea:
            gitea.comments.create(owner=owner, repo=repo, number=number, body=body)


def _ensure_branch(gitea: GiteaClient, owner: str, repo: str, *, name: str, base: str) -> bool:
    """Create `name` from `base`; True if created, False if it was there already."""
    try:
        gitea.branches.create(owner=owner, repo=repo, name=name, base=base)
    except errors.Conflict as exc:
        if getattr(exc, "status", None) == 409:  # Gitea: "branch already exists"
            return False
        raise
    return True
