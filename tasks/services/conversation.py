"""The conversation around a task: progress lines, questions and answers, review feedback
and requested changes."""

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aiworker import errors, live
from aiworker.actors import Actor
from tasks import rules
from tasks.models import Task, TaskEvent, TaskFeedback, TaskQuestion
from tasks.services.transitions import lock_task, move_checked, record_event, task_data
from tasks.services.validation import clean_text
from tasks.states import ACTIVE_STATES, TaskState, allowed_targets

S = TaskState


@transaction.atomic
def task_log_progress(*, task_id: int, actor: Actor, message: Any) -> TaskEvent:
    message = clean_text(message, field="message", required=True)
    task = lock_task(task_id)
    if actor.kind == "agent" and actor.agent and task.assigned_agent_id != actor.agent.pk:
        raise errors.PermissionDenied(
            f"Task {task.pk} is not assigned to agent {actor.agent.name}."
        )
    event = record_event(task=task, kind="progress", actor=actor, message=message)
    _drop_old_progress(task)
    live.broadcast_on_commit(
        project_id=task.project_id,
        event="task.updated",
        data={**task_data(task), "progress": message, "actor": actor.label},
    )
    return event


def _drop_old_progress(task: Task) -> None:
    """Keep the newest TASK_PROGRESS_KEEP progress lines of a task (state changes, questions
    and deploys are never dropped): a chatty agent cannot grow its task page without end."""
    keep = settings.TASK_PROGRESS_KEEP
    progress = TaskEvent.objects.filter(task=task, kind="progress")
    oldest_kept = progress.order_by("-id").values_list("id", flat=True)[keep : keep + 1]
    cut = list(oldest_kept)
    if cut:
        progress.filter(id__lte=cut[0]).delete()


@transaction.atomic
def question_ask(*, task_id: int, agent: Any, question: Any, options: Any = None) -> TaskQuestion:
    question = clean_text(question, field="question", required=True)
    options = options or []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise errors.InvalidInput(
            "options must be a list of strings.", fields={"options": ["List of strings."]}
        )
    if len(options) > 20 or any(len(o) > 500 for o in options):
        raise errors.InvalidInput(
            "At most 20 options of 500 characters.", fields={"options": ["Too many or too long."]}
        )
    task = lock_task(task_id)
    if task.assigned_agent_id != agent.pk:
        raise errors.PermissionDenied(f"Task {task.pk} is not assigned to agent {agent.name}.")
    if task.state not in ACTIVE_STATES:
        raise errors.Conflict(
            f"Task {task.pk} is '{task.state}'; questions are asked while in progress."
        )
    item = TaskQuestion.objects.create(task=task, agent=agent, question=question, options=options)
    payload = {"question_id": item.pk, "options": options}
    actor = Actor.of_agent(agent)
    if task.state == S.IN_PROGRESS:
        move_checked(task=task, to_state=S.NEEDS_INPUT, actor=actor, note=question, payload=payload)
    else:
        record_event(
            task=task, kind="question_asked", actor=actor, message=question, payload=payload
        )
        live.broadcast_on_commit(
            project_id=task.project_id, event="task.needs_input", data=task_data(task)
        )
    return item


@transaction.atomic
def question_answer(
    *, question_id: Any, actor: Actor, answer: Any, task_id: int | None = None
) -> TaskQuestion:
    answer = clean_text(answer, field="answer", required=True)
    if isinstance(question_id, bool) or not isinstance(question_id, int):
        raise errors.InvalidInput(
            "question_id must be an integer.", fields={"question_id": ["Not an integer."]}
        )
    task_ref = TaskQuestion.objects.filter(pk=question_id).values_list("task_id", flat=True).first()
    if task_ref is None or (task_id is not None and task_ref != task_id):
        raise errors.NotFound(f"Question {question_id} does not exist on this task.")
    task = lock_task(task_ref)
    item = TaskQuestion.objects.select_for_update().get(pk=question_id)
    if not item.is_open:
        raise errors.Conflict(f"Question {question_id} was already answered.")
    item.answer = answer
    item.answered_by = actor.user
    item.answered_at = timezone.now()
    item.save(update_fields=["answer", "answered_by", "answered_at"])
    live.wake_question_waits_on_commit(item.pk)  # its check_response waits, in every process
    record_event(
        task=task,
        kind="question_answered",
        actor=actor,
        message=answer,
        payload={"question_id": item.pk},
    )
    still_open = task.questions.filter(answered_at__isnull=True).exists()
    if task.state == S.NEEDS_INPUT and not still_open:
        move_checked(
            task=task,
            to_state=S.IN_PROGRESS,
            actor=actor,
            note="Every open question is answered.",
            payload={"question_id": item.pk},
        )
    else:
        live.broadcast_on_commit(
            project_id=task.project_id, event="task.updated", data=task_data(task)
        )
    return item


@transaction.atomic
def task_request_changes(*, task_id: int, actor: Actor, feedback: Any) -> Task:
    feedback = clean_text(feedback, field="feedback", required=True)
    task = lock_task(task_id)
    if task.state != S.READY_TO_TEST:
        raise errors.TransitionNotAllowed(
            task_id=task.pk,
            from_state=task.state,
            to_state=S.IN_PROGRESS,
            allowed=allowed_targets(task.state),
        )
    TaskFeedback.objects.create(
        task=task, source=TaskFeedback.Source.PERSON, author=actor.label, body=feedback
    )
    worker = task.assigned_agent
    why_not = rules.holder_refusal(agent=worker, task=task) if worker else "it has no agent"
    if not why_not:
        return move_checked(
            task=task,
            to_state=S.IN_PROGRESS,
            actor=actor,
            holder=worker,
            note=feedback,
            payload={"feedback": True},
        )
    # Its agent is busy, offline or gone: the task waits in the backlog, and whoever claims it
    # next gets the feedback with it (get_next_task answers open feedback).
    return move_checked(
        task=task,
        to_state=S.BACKLOG,
        actor=actor,
        note=f"Changes requested: {feedback}\n(Back to the backlog: {why_not})",
        payload={"feedback": True},
    )


@transaction.atomic
def feedback_add(
    *,
    task_id: int,
    source: str,
    author: str,
    body: Any,
    external_id: str | None = None,
    actor: Actor,
) -> TaskFeedback | None:
    """Record review feedback once (a redelivered Gitea comment is ignored)."""
    body = clean_text(body, field="body", required=True)
    task = lock_task(task_id)
    if (
        external_id
        and TaskFeedback.objects.filter(task=task, source=source, external_id=external_id).exists()
    ):
        return None
    item = TaskFeedback.objects.create(
        task=task, source=source, author=author[:150], body=body, external_id=external_id or None
    )
    record_event(
        task=task,
        kind="feedback",
        actor=actor,
        message=body,
        payload={"feedback_id": item.pk, "source": source, "author": author},
    )
    live.broadcast_on_commit(
        project_id=task.project_id,
        event="task.updated",
        data={**task_data(task), "feedback": True},
    )
    return item


@transaction.atomic
def feedback_take_unseen(*, task_id: int, agent: Any) -> list[TaskFeedback]:
    """The feedback the agent has not read yet, marked as read."""
    task = lock_task(task_id)
    if task.assigned_agent_id != agent.pk:
        raise errors.PermissionDenied(f"Task {task.pk} is not assigned to agent {agent.name}.")
    items = list(task.feedback.filter(seen_at__isnull=True).order_by("created_at", "id"))
    if items:
        TaskFeedback.objects.filter(pk__in=[i.pk for i in items]).update(seen_at=timezone.now())
    return items
