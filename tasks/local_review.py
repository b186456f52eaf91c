"""Reviewing a pull request of the local forge on the task page.

What the pull request changes is read from the bare repository with git (local_git): its
commits, the files with their +/- counts, and the diff, between the merge base and the head.
What a person says about it is a PullRequestComment and, through the same tasks services a
Gitea review webhook calls (tasks/gitea_deliveries.py), feedback the agent reads with
`get_feedback`; a request for changes on a task that is ready to test sends it back to its
agent, as the board's "Request changes" does (SPEC §5: ready_to_test → in_progress).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from aiworker import errors
from aiworker.actors import Actor
from projects import roles
from projects.forges import local_git
from projects.forges.local import repository_path
from projects.models import Project, PullRequestComment
from projects.models import PullRequest as PullRequestRecord
from tasks import services as task_services
from tasks.models import Task, TaskFeedback
from tasks.states import TaskState

Kind = PullRequestComment.Kind
VERDICTS = (Kind.COMMENT, Kind.CHANGES_REQUESTED)
# The words a Gitea "changes requested" review puts before its text (gitea_deliveries._on_review):
# the agent reads a request for changes the same way whichever forge it came from.
CHANGES_REQUESTED_MARK = "[changes requested]"
_SHA = re.compile(r"[0-9a-f]{40,64}")


@dataclass(frozen=True)
class Changes:
    """What a pull request changes; `unavailable` says why it cannot be shown, if it cannot."""

    base_sha: str = ""
    head_sha: str = ""
    commits: list[local_git.Commit] = field(default_factory=list)
    commits_truncated: bool = False
    files: list[local_git.FileStat] = field(default_factory=list)
    files_truncated: bool = False
    diff: local_git.Diff | None = None
    unavailable: str = ""

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed for f in self.files)


@dataclass(frozen=True)
class TaskPullRequest:
    """A task's local pull request as the task page shows it."""

    record: PullRequestRecord
    comments: list[PullRequestComment]
    changes: Changes


# --- reads ------------------------------------------------------------------------------------


def pull_request_of_task(task: Task) -> PullRequestRecord | None:
    """The local-forge pull request the task opened, or None (no PR, or a Gitea project)."""
    if task.project.forge != Project.Forge.LOCAL or not task.pr_number:
        return None
    return (
        PullRequestRecord.objects.select_related("project")
        .filter(project_id=task.project_id, number=task.pr_number)
        .first()
    )


def task_pull_request(task: Task) -> TaskPullRequest | None:
    record = pull_request_of_task(task)
    if record is None:
        return None
    return TaskPullRequest(
        record=record,
        comments=list(record.comments.all()),
        changes=pull_request_changes(record),
    )


def pull_request_changes(record: PullRequestRecord) -> Changes:
    """Commits, files and diff from the merge base to the head. An open PR follows its
    branches; a merged one keeps the shas recorded at its merge (the base has moved on since,
    and the branch may be gone), so its diff stays what was reviewed."""
    repo = repository_path(record.project)
    if not (repo / "HEAD").exists():
        return Changes(unavailable=f"The repository {repo.name} does not exist on this machine.")
    try:
        head, base_tip = _ends(repo, record)
        if not head or not base_tip:
            return Changes(
                unavailable="The commits of this pull request are no longer in the repository."
            )
        # No common ancestor (unrelated histories): compare with the base's tip instead.
        base = local_git.merge_base(repo, base_tip, head) or base_tip
        # The limits are read here, not bound as defaults, so one place (local_git) sets them.
        max_commits, max_files = local_git.LOG_MAX_COMMITS, local_git.NUMSTAT_MAX_FILES
        commits = local_git.log(repo, base=base_tip, head=head, limit=max_commits)
        files = local_git.numstat(repo, base=base, head=head, limit=max_files)
        diff = local_git.diff(
            repo,
            base=base,
            head=head,
            max_bytes=local_git.DIFF_MAX_BYTES,
            max_lines=local_git.DIFF_MAX_LINES,
        )
    except local_git.GitFailed as exc:
        return Changes(unavailable=f"The changes cannot be read: {exc.message}")
    return Changes(
        base_sha=base,
        head_sha=head,
        # log read one commit more than the limit, oldest first: the newest ones are kept.
        commits=commits[-max_commits:],
        commits_truncated=len(commits) > max_commits,
        files=files[:max_files],
        files_truncated=len(files) > max_files,
        diff=diff,
    )


def _ends(repo: Any, record: PullRequestRecord) -> tuple[str, str]:
    """(head, base tip) as commits the repository has; "" for an end it lacks."""
    if record.state == PullRequestRecord.State.MERGED:
        base = _recorded(repo, record.base_sha)
        if not base and _recorded(repo, record.merge_commit_sha):
            # Merged before base_sha was recorded: the merge commit's first parent is the base.
            base = local_git.commit_sha(repo, f"{record.merge_commit_sha}^1")
        return _recorded(repo, record.head_sha), base
    head = local_git.sha_of(repo, record.head_ref) or _recorded(repo, record.head_sha)
    return head, local_git.sha_of(repo, record.base_ref)


def _recorded(repo: Any, sha: str) -> str:
    # Only a sha goes to git from the record: nothing there reads as an option or a range.
    return local_git.commit_sha(repo, sha) if _SHA.fullmatch(sha or "") else ""


# --- writes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewResult:
    comment: PullRequestComment
    task: Task
    sent_back: bool  # the request for changes moved the task back to its agent (or backlog)


def pull_request_review_add(
    *, task_id: int, actor: Actor, body: Any, verdict: Any = Kind.COMMENT
) -> ReviewResult:
    """A person's comment or request for changes on the task's local pull request: kept on the
    PR and given to the agent as feedback. Nothing is written when anything is refused."""
    body = task_services.clean_text(body, field="body", required=True)
    if verdict not in VERDICTS:
        raise errors.InvalidInput(
            f"verdict must be one of {', '.join(VERDICTS)}.", fields={"verdict": ["Unknown."]}
        )
    with transaction.atomic():
        task = task_services.lock_task(task_id)
        if not actor.has_perm(roles.REQUEST_CHANGES, task.project_id):
            raise errors.PermissionDenied(roles.denied_message(roles.REQUEST_CHANGES, task.project))
        record = pull_request_of_task(task)
        if record is None:
            raise errors.Conflict(_no_pull_request(task))
        changes = verdict == Kind.CHANGES_REQUESTED
        if changes and record.state != PullRequestRecord.State.OPEN:
            raise errors.Conflict(
                f"Pull request #{record.number} is {record.state}: changes can be requested "
                "only on an open pull request (a comment still reaches the agent)."
            )
        comment = PullRequestComment.objects.create(
            pull_request=record, author=actor.label[:150], kind=verdict, body=body
        )
        text = f"{CHANGES_REQUESTED_MARK} {body}" if changes else body
        text = text[: settings.TEXT_FIELD_MAX]
        sent_back = changes and task.state == TaskState.READY_TO_TEST
        if sent_back:
            task = task_services.task_request_changes(task_id=task.pk, actor=actor, feedback=text)
        else:
            task_services.feedback_add(
                task_id=task.pk,
                source=TaskFeedback.Source.PERSON,
                author=actor.label,
                body=text,
                external_id=f"local-pr-comment-{comment.pk}",
                actor=actor,
            )
    return ReviewResult(comment=comment, task=task, sent_back=sent_back)


def _no_pull_request(task: Task) -> str:
    if task.project.forge != Project.Forge.LOCAL:
        return (
            f"Task {task.pk}'s pull request lives on Gitea: review it there, "
            "or use Request changes on this page."
        )
    if not task.pr_number:
        return (
            f"Task {task.pk} has no pull request yet: the agent opens one with create_pull_request."
        )
    return f"Pull request #{task.pr_number} of task {task.pk} does not exist in this project."
