"""The local forge: a bare repository on this machine, pull requests kept by the platform.

The repository is the project's `local_repo_path`, or var/repos/<slug>.git, which the platform
creates with the flow's branches. Agents clone and push over git's smart HTTP at
/git/<slug>.git (agents/git_http.py). Merges are real `git merge`s in a temporary
worktree (projects/forges/local_git.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aiworker import errors
from projects.forges import local_git
from projects.forges.base import PullRequest
from projects.models import Project, PullRequestComment
from projects.models import PullRequest as PullRequestRecord

PLATFORM_AUTHOR = "AiWorker"


def repository_path(project: Project) -> Path:
    if project.local_repo_path:
        return Path(project.local_repo_path).expanduser()
    return Path(settings.VAR_DIR) / "repos" / f"{project.slug}.git"


def pull_request_url(project: Project, number: int) -> str:
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}/projects/{project.slug}/pulls/{number}/"


def as_pull_request(record: PullRequestRecord) -> PullRequest:
    return PullRequest(
        number=record.number,
        state="open" if record.state == PullRequestRecord.State.OPEN else "closed",
        merged=record.state == PullRequestRecord.State.MERGED,
        html_url=pull_request_url(record.project, record.number),
        head_ref=record.head_ref,
        head_sha=record.head_sha,
        base_ref=record.base_ref,
        merge_commit_sha=record.merge_commit_sha,
    )


class LocalForge:
    name = "local"

    def __init__(self, project: Project) -> None:
        self.project = project

    @property
    def path(self) -> Path:
        return repository_path(self.project)

    def repo(self) -> Path:
        """The repository, created on first use."""
        if not (self.path / "HEAD").exists():
            self.ensure_repository()
        return self.path

    # --- the interface ------------------------------------------------------------------------

    def clone_url(self) -> str | None:
        return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/git/{self.project.slug}.git"

    def ensure_repository(self) -> None:
        p = self.project
        if p.local_repo_path and not (self.path / "HEAD").exists():
            raise errors.InvalidInput(
                f"{self.path} is not a bare git repository.",
                fields={"local_repo_path": ["Not a bare repository (no HEAD)."]},
            )
        local_git.init_bare(
            self.path,
            default_branch=p.default_branch,
            other_branches=(p.staging_branch, p.production_branch),
        )

    def create_branch(self, *, name: str, base: str) -> bool:
        return local_git.create_branch(self.repo(), name=name, base=base)

    def find_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        record = self._open(head=head, base=base)
        return as_pull_request(record) if record else None

    def open_pull_request(
        self, *, head: str, base: str, title: str, body: str
    ) -> tuple[PullRequest, bool]:
        repo = self.repo()
        head_sha = local_git.sha_of(repo, head)
        if not head_sha:
            raise errors.InvalidInput(f"Branch {head} does not exist: push it first.")
        if not local_git.sha_of(repo, base):
            raise errors.NotFound(f"Branch {base} does not exist in the repository.")
        if local_git.is_ancestor(repo, head_sha, base):
            raise errors.InvalidInput(
                f"{head} has no commits that {base} lacks: nothing to review."
            )
        with transaction.atomic():
            # The project's row is the lock that numbers its pull requests one by one.
            Project.objects.select_for_update().only("pk").get(pk=self.project.pk)
            record = self._open(head=head, base=base)
            if record is not None:
                return as_pull_request(record), False
            last = self.project.pull_requests.order_by("-number").values_list("number", flat=True)
            record = PullRequestRecord.objects.create(
                project=self.project,
                number=(last.first() or 0) + 1,
                title=title[:255],
                body=body,
                head_ref=head,
                base_ref=base,
                head_sha=head_sha,
            )
        return as_pull_request(record), True

    def get_pull_request(self, *, number: int) -> PullRequest:
        return as_pull_request(self._record(number))

    def merge_pull_request(self, *, number: int, message: str) -> PullRequest:
        record = self._record(number)
        if record.state == PullRequestRecord.State.MERGED:
            return as_pull_request(record)
        if record.state != PullRequestRecord.State.OPEN:
            raise errors.Conflict(f"Pull request #{number} is closed without a merge.")
        repo = self.repo()
        head_sha = local_git.sha_of(repo, record.head_ref) or record.head_sha
        base_before = local_git.sha_of(repo, record.base_ref)
        merged_sha = local_git.merge(
            repo, head=head_sha, base=record.base_ref, message=message, no_ff=True
        )
        with transaction.atomic():
            record = PullRequestRecord.objects.select_for_update().get(pk=record.pk)
            record.state = PullRequestRecord.State.MERGED
            record.head_sha, record.base_sha = head_sha, base_before
            record.merge_commit_sha = merged_sha
            record.merged_at = timezone.now()
            record.save(
                update_fields=[
                    "state",
                    "head_sha",
                    "base_sha",
                    "merge_commit_sha",
                    "merged_at",
                    "updated_at",
                ]
            )
        return as_pull_request(record)

    def bring_up_to_date(self, *, head: str, base: str, title: str) -> str:
        """A fast-forward when `base` has nothing of its own (promotion), else a merge."""
        repo = self.repo()
        head_sha = local_git.sha_of(repo, head)
        if not head_sha:
            raise errors.NotFound(f"Branch {head} does not exist in the repository.")
        if local_git.is_ancestor(repo, head_sha, base):
            return local_git.sha_of(repo, base)
        return local_git.merge(repo, head=head_sha, base=base, message=title, no_ff=False)

    def comment(self, *, number: int, body: str) -> None:
        PullRequestComment.objects.create(
            pull_request=self._record(number),
            author=PLATFORM_AUTHOR,
            kind=PullRequestComment.Kind.PLATFORM,
            body=body,
        )

    # --- beyond the interface -----------------------------------------------------------------

    def close_pull_request(self, *, number: int) -> PullRequest:
        updated = PullRequestRecord.objects.filter(
            project=self.project, number=number, state=PullRequestRecord.State.OPEN
        ).update(state=PullRequestRecord.State.CLOSED, updated_at=timezone.now())
        if not updated:
            self._record(number)  # NotFound when there is no such PR
        return self.get_pull_request(number=number)

    def branch_pushed(self, *, head: str, sha: str) -> int:
        """A push moved `head`: its open pull requests follow (how many there were)."""
        return PullRequestRecord.objects.filter(
            project=self.project, head_ref=head, state=PullRequestRecord.State.OPEN
        ).update(head_sha=sha, updated_at=timezone.now())

    def _open(self, *, head: str, base: str) -> PullRequestRecord | None:
        return (
            PullRequestRecord.objects.select_related("project")
            .filter(project=self.project, head_ref=head, base_ref=base, state="open")
            .first()
        )

    def _record(self, number: Any) -> PullRequestRecord:
        record = (
            PullRequestRecord.objects.select_related("project")
            .filter(project=self.project, number=number)
            .first()
        )
        if record is None:
            raise errors.NotFound(f"Pull request #{number} does not exist in {self.project.slug}.")
        return record
