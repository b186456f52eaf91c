"""Gitea webhook deliveries: receive (verify, record once) and process (in a job).

`delivery_receive` is what the view calls with the raw body: it checks the signature before the
body is parsed, and records X-Gitea-Delivery under a unique key so a redelivery has no second
effect. The event's own identity (`event_key`: a comment's id, a review, a push's ref and shas,
a pull request's action at its head sha) is recorded under a second unique key, per project: a
signed body replayed under a new X-Gitea-Delivery id is a duplicate too. `delivery_process`
runs in a job and applies the event to the task it concerns.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from aiworker import errors
from aiworker.actors import Actor
from aiworker.jobs import start_job_on_commit
from projects.forges import gitea
from projects.models import Project, WebhookDelivery
from tasks import services as task_services
from tasks.models import Task, TaskFeedback
from tasks.services import forge

logger = logging.getLogger(__name__)

REVIEW_EVENTS = {
    # X-Gitea-Event carries the short names, X-Gitea-Event-Type the long ones; take either.
    "pull_request_approved",
    "pull_request_rejected",
    "pull_request_comment",
    "pull_request_review_approved",
    "pull_request_review_rejected",
    "pull_request_review_comment",
}
EVENTS = {"pull_request", "issue_comment", "push", "status", *REVIEW_EVENTS}


class SignatureInvalid(errors.PermissionDenied):
    """Missing (`missing=True` -> 401) or wrong (403) X-Gitea-Signature."""

    def __init__(self, message: str, *, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class Received:
    delivery: WebhookDelivery | None  # None: a redelivery, already recorded
    duplicate: bool


def signature_of(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_receive(
    *, project_slug: str, signature: str, event: str, delivery_id: str, body: bytes
) -> Received:
    """Verify, parse and record one delivery; its processing starts after commit."""
    if not project_slug:
        raise errors.InvalidInput(
            "The webhook URL must name the project: …/api/webhooks/gitea/?project=<slug>.",
            fields={"project": ["Missing."]},
        )
    project = Project.objects.filter(slug=project_slug).first()
    if project is None:
        raise errors.NotFound(f"Unknown project '{project_slug[:60]}'.")
    if not signature:
        raise SignatureInvalid("Missing X-Gitea-Signature header.", missing=True)
    expected = signature_of(project.webhook_secret, body)
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise SignatureInvalid("X-Gitea-Signature does not match the body.", missing=False)
    # Verified: from here on the body is trusted to come from the project's Gitea.
    if event not in EVENTS:
        raise errors.InvalidInput(
            f"Unknown event '{event[:60]}'. Handled: {', '.join(sorted(EVENTS))}.",
            fields={"X-Gitea-Event": ["Unknown event."]},
        )
    if not delivery_id or len(delivery_id) > 100:
        raise errors.InvalidInput(
            "Missing or oversize X-Gitea-Delivery header.", fields={"X-Gitea-Delivery": ["Bad."]}
        )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidInput("The body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise errors.InvalidInput("The body must be a JSON object.")
    full_name = str((payload.get("repository") or {}).get("full_name") or "")
    if full_name.lower() != f"{project.gitea_owner}/{project.gitea_repo}".lower():
        raise errors.InvalidInput(
            f"Unknown repository '{full_name[:200]}' for project {project.slug}.",
            fields={"repository": ["Not this project's repository."]},
        )
    key = event_key(event, payload, body)
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                delivery_id=delivery_id,
                event=event,
                project=project,
                payload=payload,
                event_key=key,
            )
            start_job_on_commit("tasks.jobs.process_webhook_delivery", delivery_pk=delivery.pk)
    except IntegrityError:
        # The same X-Gitea-Delivery again (a redelivery, or two racing), or the same event under
        # another delivery id (a replayed body): its first copy counts.
        logger.info("gitea webhook duplicate: project=%s event key=%s", project.slug, key)
        return Received(delivery=None, duplicate=True)
    return Received(delivery=delivery, duplicate=False)


def _digest(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


def review_identity(payload: dict[str, Any]) -> str:
    """A review's identity: Gitea's id when the payload has one, else what makes it this review
    (the PR, its head sha, the reviewer, the verdict, the text)."""
    review = payload.get("review") or {}
    if isinstance(review, dict) and review.get("id") not in (None, ""):
        return f"review-{review['id']}"
    pr = payload.get("pull_request") or {}
    head = (pr.get("head") or {}) if isinstance(pr, dict) else {}
    sender = payload.get("sender") or {}
    return "review-event-" + _digest(
        pr.get("number") if isinstance(pr, dict) else None,
        head.get("sha") if isinstance(head, dict) else None,
        sender.get("id") or sender.get("login") if isinstance(sender, dict) else None,
        review.get("type") if isinstance(review, dict) else None,
        review.get("content") if isinstance(review, dict) else None,
    )


def event_key(event: str, payload: dict[str, Any], body: bytes) -> str:
    """What the event is about, from the signed body; the same for every copy of one event.

    Falls back on the body's hash: a replay is byte for byte the body that was signed.
    """

    def get(data: Any, *path: str) -> Any:
        for name in path:
            data = data.get(name) if isinstance(data, dict) else None
        return data

    if event in REVIEW_EVENTS:
        key = review_identity(payload)  # one review, whichever of its event names Gitea sent
    elif event == "issue_comment" and get(payload, "comment", "id") is not None:
        key = f"comment-{get(payload, 'comment', 'id')}-{payload.get('action') or 'created'}"
    elif event == "push" and payload.get("ref") and payload.get("after"):
        key = f"push-{_digest(payload['ref'], payload.get('before'), payload['after'])}"
    elif event == "pull_request" and get(payload, "pull_request", "number") is not None:
        pr = payload["pull_request"]
        key = "pr-{}-{}-{}".format(
            pr["number"],
            payload.get("action") or "",
            _digest(get(pr, "head", "sha"), pr.get("updated_at"), pr.get("merged")),
        )
    elif event == "status" and payload.get("sha"):
        key = "status-" + _digest(
            payload["sha"],
            payload.get("context"),
            payload.get("state"),
            payload.get("id"),
            payload.get("updated_at"),
        )
    else:
        key = f"{event}-body-{hashlib.sha256(body).hexdigest()[:32]}"
    return key[:200]


def delivery_process(*, delivery_pk: int) -> str:
    """Apply a recorded delivery once: a second run of the job finds it done."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .select_related("project")
            .filter(pk=delivery_pk)
            .first()
        )
        if delivery is None or delivery.outcome != WebhookDelivery.Outcome.PENDING:
            return delivery.outcome if delivery else "missing"
        handler = _HANDLERS.get(delivery.event) or (
            _on_review if delivery.event in REVIEW_EVENTS else None
        )
        try:
            with transaction.atomic():
                detail = handler(delivery) if handler else "no handler"
            outcome = WebhookDelivery.Outcome.PROCESSED
        except errors.DomainError as exc:
            detail, outcome = exc.message, WebhookDelivery.Outcome.FAILED
        if detail.startswith("ignored"):
            outcome = WebhookDelivery.Outcome.IGNORED
        delivery.outcome = outcome
        delivery.detail = detail[:2000]
        delivery.processed_at = timezone.now()
        delivery.save(update_fields=["outcome", "detail", "processed_at"])
        return outcome


# --- one handler per event --------------------------------------------------------------------

ACTOR = Actor.webhook("gitea")


def _task_by_pr(project: Project, number: Any) -> Task | None:
    if not isinstance(number, int):
        return None
    return Task.objects.filter(project=project, pr_number=number).first()


def _on_pull_request(delivery: WebhookDelivery) -> str:
    payload, project = delivery.payload, delivery.project
    assert project is not None
    data = payload.get("pull_request") or {}
    action = payload.get("action") or ""
    pr = gitea.PullRequest.of(data)
    task = _task_by_pr(project, pr.number)
    if task is None and pr.base_ref == project.default_branch:
        task_id = forge.task_id_from_branch(pr.head_ref)
        task = Task.objects.filter(project=project, pk=task_id).first() if task_id else None
    if task is None:
        return f"ignored: PR #{pr.number} belongs to no task"
    if action == "opened" or (action == "reopened" and task.pr_number != pr.number):
        forge.record_task_change(
            task.pk,
            actor=ACTOR,
            kind="pr_opened",
            message=f"Pull request #{pr.number} opened: {pr.html_url}",
            pr_number=pr.number,
            pr_url=pr.html_url,
            head_sha=pr.head_sha or task.head_sha,
        )
        return f"task {task.pk}: PR opened"
    if action in ("synchronized", "synchronize"):
        forge.record_task_change(
            task.pk,
            actor=ACTOR,
            kind="pr_updated",
            message=f"Pull request #{pr.number} got new commits.",
            head_sha=pr.head_sha or task.head_sha,
        )
        return f"task {task.pk}: PR synchronized"
    if action == "closed" or pr.merged:
        return f"task {task.pk}: " + forge.pull_request_state_changed(
            task_id=task.pk, pr=pr, actor=ACTOR
        )
    return f"ignored: pull_request action '{action}'"


def _on_review(delivery: WebhookDelivery) -> str:
    payload, project = delivery.payload, delivery.project
    assert project is not None
    number = (payload.get("pull_request") or {}).get("number")
    task = _task_by_pr(project, number)
    if task is None:
        return f"ignored: review on PR #{number} of no task"
    review = payload.get("review") or {}
    verdict = {"pull_request_approved": "approved", "pull_request_rejected": "changes requested"}
    kind = verdict.get(delivery.event.replace("_review", ""), "comment")
    body = (review.get("content") or "").strip()
    text = f"[{kind}] {body}".strip() if body or kind != "comment" else ""
    if not text:
        return "ignored: empty review"
    task_services.feedback_add(
        task_id=task.pk,
        source=TaskFeedback.Source.GITEA_REVIEW,
        author=str((payload.get("sender") or {}).get("login") or ""),
        body=text[: settings.TEXT_FIELD_MAX],
        # The review's identity, not the delivery's: a replay under a new id adds nothing, and
        # the reconcile job (which reads reviews by id) finds it already there.
        external_id=review_identity(payload)[:100],
        actor=ACTOR,
    )
    return f"task {task.pk}: review feedback"


def _on_issue_comment(delivery: WebhookDelivery) -> str:
    payload, project = delivery.payload, delivery.project
    assert project is not None
    issue = payload.get("issue") or {}
    if not issue.get("pull_request") and not payload.get("is_pull"):
        return "ignored: comment on an issue, not a PR"
    if payload.get("action") not in (None, "created"):
        return f"ignored: comment action '{payload.get('action')}'"
    task = _task_by_pr(project, issue.get("number"))
    if task is None:
        return f"ignored: comment on PR #{issue.get('number')} of no task"
    comment = payload.get("comment") or {}
    body = str(comment.get("body") or "")
    if not body.strip() or body.startswith(forge.OWN_COMMENT_MARK):
        return "ignored: empty or own comment"
    task_services.feedback_add(
        task_id=task.pk,
        source=TaskFeedback.Source.GITEA_COMMENT,
        author=str((comment.get("user") or {}).get("login") or ""),
        body=body[: settings.TEXT_FIELD_MAX],
        external_id=f"comment-{comment.get('id')}",
        actor=ACTOR,
    )
    return f"task {task.pk}: comment feedback"


def _on_push(delivery: WebhookDelivery) -> str:
    payload, project = delivery.payload, delivery.project
    assert project is not None
    return forge.task_branch_pushed(
        project=project,
        ref=str(payload.get("ref") or ""),
        after=str(payload.get("after") or ""),
        actor=ACTOR,
    )


def _on_status(delivery: WebhookDelivery) -> str:
    payload, project = delivery.payload, delivery.project
    assert project is not None
    sha, state = str(payload.get("sha") or ""), str(payload.get("state") or "")
    task = Task.objects.filter(project=project, head_sha=sha).first() if sha else None
    if task is None:
        return f"ignored: status for {sha[:10]}, no task's head"
    if state != "success":
        return f"ignored: status {state[:20]} for task {task.pk}"
    forge.record_task_change(
        task.pk,
        actor=ACTOR,
        kind="commit_status",
        message=f"{payload.get('context') or 'build'} succeeded for {sha[:10]}.",
    )
    start_job_on_commit("deployments.jobs.deploy_preview", task_id=task.pk, commit_sha=sha)
    return f"task {task.pk}: image built for {sha[:10]}"


_HANDLERS: dict[str, Callable[[WebhookDelivery], str]] = {
    "pull_request": _on_pull_request,
    "issue_comment": _on_issue_comment,
    "push": _on_push,
    "status": _on_status,
}
