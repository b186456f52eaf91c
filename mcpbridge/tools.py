"""The agent's work tools (SPEC §6). Each validates, calls a service, shapes a small answer.

Refusals reach the agent as MCP tool errors ("[code] what was wrong. what to do.") and change
nothing, because every service raises before it writes or inside its rolled-back transaction.
"""

import importlib
import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from django.conf import settings
from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from agents.mcp_calls import agent_cli_call_count
from agents.models import Agent
from agents.services import agent_heartbeat
from aiworker import errors
from aiworker.actors import Actor
from mcpbridge import context as shape
from mcpbridge.auth import caller_of, run_as_agent
from mcpbridge.tool_meta import ADD, CONSUME, EXTERNAL, GIVE_UP, MOVE, READ, SET, tool
from mcpbridge.waiting import wait_for_answer
from tasks import selectors as task_selectors
from tasks import services as task_services
from tasks.models import Task
from tasks.states import ACTIVE_STATES, TaskState

logger = logging.getLogger(__name__)

TaskId = Annotated[int, Field(strict=True, gt=0, description="The task's id.")]
Text = Annotated[str, Field(max_length=settings.TEXT_FIELD_MAX)]
AgentSettable = Literal["idle", "busy", "error"]
WAIT_MAX = 55


def _state_answer(task: Task, **extra: Any) -> dict[str, Any]:
    return {"task_id": task.pk, "state": task.state, **extra}


# --- the bodies, run in a worker thread with the authenticated agent --------------------------


def _next_task(*, agent: Agent, project: str | None) -> dict[str, Any]:
    scope = shape.agent_project(agent, project)
    # The answer is built inside the claim's transaction: if it cannot be, nothing is claimed.
    answer = task_services.task_claim_next(agent=agent, project=scope, answer=shape.task_context)
    if answer is None:
        where = f"project '{project}'" if project else "your projects"
        return {"task": None, "message": f"No claimable task in {where}. Ask again later."}
    return answer


def _context(*, agent: Agent) -> dict[str, Any]:
    task = (
        Task.objects.select_related("project")
        .filter(assigned_agent=agent, state__in=ACTIVE_STATES)
        .order_by("id")
        .first()
    )
    if task is None:
        return {"task": None, "message": "You hold no task. Call get_next_task to claim one."}
    return shape.task_context(task)


def _heartbeat(*, agent: Agent, status: str | None, message: str | None) -> dict[str, Any]:
    beat = agent_heartbeat(agent=agent, status=status, message=message)
    lease: tuple[int, datetime | None] | None = None
    if beat.task_id and beat.lease_expires_at:
        lease = (beat.task_id, beat.lease_expires_at)
    elif beat.task_id:  # a held task moved meanwhile: read what holds now
        lease = (
            Task.objects.filter(assigned_agent=agent, state__in=ACTIVE_STATES)
            .values_list("pk", "lease_expires_at")
            .first()
        )
    return {
        "agent": agent.name,
        "kind": agent.kind,  # the runner picks its agent CLI's launch profile by it
        "status": agent.status,
        "current_task_id": lease[0] if lease else None,
        "lease_expires_at": lease[1].isoformat() if lease and lease[1] else None,
        # Tool calls the agent's CLI made (the runner's own are not counted): the runner reads
        # it before and after running the CLI to know whether the CLI reached the platform.
        "cli_calls": agent_cli_call_count(agent),
    }


def _transition(*, agent: Agent, task_id: int, status: str, note: str) -> dict[str, Any]:
    before = Task.objects.filter(pk=task_id).values_list("state", flat=True).first()
    task = task_services.task_transition(
        task_id=task_id, to_state=status, actor=Actor.of_agent(agent), note=note
    )
    return _state_answer(task, from_state=before)


def _log(*, agent: Agent, task_id: int, message: str) -> dict[str, Any]:
    event = task_services.task_log_progress(
        task_id=task_id, actor=Actor.of_agent(agent), message=message
    )
    return {"task_id": task_id, "event_id": event.pk}


def _ask(*, agent: Agent, task_id: int, question: str, options: list[str] | None) -> dict:
    item = task_services.question_ask(
        task_id=task_id, agent=agent, question=question, options=options
    )
    state = Task.objects.values_list("state", flat=True).get(pk=task_id)
    return {"question_id": item.pk, "task_id": task_id, "state": state}


def _question_asked(*, agent: Agent, question_id: int) -> tuple[dict[str, Any], int]:
    return _question(agent=agent, question_id=question_id), agent.pk


def _question(*, agent: Agent, question_id: int) -> dict[str, Any]:
    found = task_selectors.question_with_task_holder(question_id=question_id)
    if found is None:
        raise errors.NotFound(f"Question {question_id} does not exist.")
    item, holder_id = found
    if item.agent_id != agent.pk and holder_id != agent.pk:
        raise errors.PermissionDenied(
            f"Question {question_id} belongs to a task of another agent than {agent.name}."
        )
    return shape.question_data(item)


def _feedback(*, agent: Agent, task_id: int) -> dict[str, Any]:
    items = task_services.feedback_take_unseen(task_id=task_id, agent=agent)
    return {"task_id": task_id, "feedback": [shape.feedback_data(i) for i in items]}


def _complete(*, agent: Agent, task_id: int, summary: str) -> dict[str, Any]:
    summary = task_services.clean_text(summary, field="summary", required=True)
    task = task_services.task_transition(
        task_id=task_id,
        to_state=TaskState.READY_TO_TEST,
        actor=Actor.of_agent(agent),
        note=summary,
        payload={"summary": True},
    )
    return _state_answer(task, pr_url=task.pr_url or None, preview_url=task.preview_url or None)


def _release(*, agent: Agent, task_id: int, reason: str) -> dict[str, Any]:
    task = task_services.task_release(task_id=task_id, actor=Actor.of_agent(agent), reason=reason)
    return _state_answer(task)


# --- Gitea and deployments: services other apps provide ---------------------------------------

INTEGRATIONS = {
    "create_branch": ("tasks.services.forge", "task_create_branch", "Gitea"),
    "create_pull_request": ("tasks.services.forge", "task_open_pull_request", "Gitea"),
    # Queues the deploy job (SPEC §6) instead of applying it here: a driver call can take
    # minutes. In the embedded default the job runs eagerly, in this same call.
    "trigger_preview_deploy": ("deployments.services", "preview_queue", "Preview deployment"),
}


def _integration(tool: str) -> Any:
    """The service behind an integration tool, or NotConfigured — never a pretend success."""
    # Whether Gitea or a deploy driver is configured is the task's project's question (its
    # forge and its driver may be the local ones): the service answers NotConfigured itself.
    module_name, function_name, what = INTEGRATIONS[tool]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        logger.warning("%s cannot be imported", module_name, exc_info=True)
        module = None
    function = getattr(module, function_name, None)
    if function is None:
        raise errors.NotConfigured(
            f"{what} is not available on this server yet ({module_name}.{function_name})."
        )
    return function


def _integration_call(*, agent: Agent, tool: str, task_id: int, **kwargs: Any) -> dict:
    shape.own_task(agent, task_id)  # refuse another agent's task before touching anything
    result = _integration(tool)(task_id=task_id, actor=Actor.of_agent(agent), **kwargs)
    task = Task.objects.get(pk=task_id)
    answer: dict[str, Any] = {
        "task_id": task.pk,
        "branch": task.branch_name or None,
        "pr_number": task.pr_number,
        "pr_url": task.pr_url or None,
        "preview_url": task.preview_url or None,
    }
    if isinstance(result, str):  # a queued preview's URL
        answer["preview_url"] = result
        answer["queued"] = True
    elif result is not None and hasattr(result, "pk"):  # a Deployment
        answer["deployment"] = {
            "id": result.pk,
            "status": getattr(result, "status", None),
            "url": getattr(result, "url", None) or task.preview_url or None,
        }
    return answer


# --- registration -----------------------------------------------------------------------------


def register(server: MCPServer) -> None:
    @tool(server, SET)
    async def get_next_task(
        ctx: Context,
        project: Annotated[
            str | None, Field(description="Project slug; omit for any project you may work on.")
        ] = None,
    ) -> dict[str, Any]:
        """Claim the next task to work on (or get back the one you already hold).

        Returns the task (id, title, description, state, priority, specification), its project
        (slug, name, default branch), repo_clone_url, the branch to use, answered questions,
        unseen review feedback, the attempt number and the lease expiry. Returns task=null when
        nothing is claimable. Work on the task, then create_branch, create_pull_request,
        trigger_preview_deploy and complete_task; call heartbeat while you work.
        """
        return await run_as_agent(ctx, _next_task, project=project)

    @tool(server, READ)
    async def get_context(ctx: Context) -> dict[str, Any]:
        """Your current task with everything get_next_task returns, without claiming anything.

        Unseen feedback is shown but stays unseen (get_feedback marks it read).
        """
        return await run_as_agent(ctx, _context)

    @tool(server, SET)
    async def heartbeat(
        ctx: Context,
        status: Annotated[AgentSettable | None, Field(description="Your status.")] = None,
        message: Annotated[str | None, Field(max_length=500)] = None,
    ) -> dict[str, Any]:
        """Say you are alive: renews your task's lease (any tool call does too).

        Call it at least every minute while working, or your task goes back to the backlog.
        """
        # touch=False: the heartbeat writes the heartbeat itself, once.
        return await run_as_agent(ctx, _heartbeat, touch=False, status=status, message=message)

    @tool(server, MOVE)
    async def update_task_status(
        ctx: Context,
        task_id: TaskId,
        status: Annotated[
            str, Field(description="Target state: needs_input, ready_to_test or backlog.")
        ],
        note: Annotated[str, Field(max_length=settings.TEXT_FIELD_MAX)] = "",
    ) -> dict[str, Any]:
        """Move your task to another state you may set.

        From in_progress: ready_to_test, needs_input or backlog; from needs_input: backlog.
        A refused move names the allowed targets.
        """
        return await run_as_agent(ctx, _transition, task_id=task_id, status=status, note=note)

    @tool(server, ADD)
    async def log_progress(ctx: Context, task_id: TaskId, message: Text) -> dict[str, Any]:
        """Add a line to your task's timeline; people see it live on the board."""
        return await run_as_agent(ctx, _log, task_id=task_id, message=message)

    @tool(server, ADD)
    async def ask_user_question(
        ctx: Context,
        task_id: TaskId,
        question: Text,
        options: Annotated[
            list[str] | None, Field(description="Choices to offer, at most 20.", max_length=20)
        ] = None,
    ) -> dict[str, Any]:
        """Ask the people a question about your task; the task moves to needs_input.

        Returns question_id. Then call check_response(question_id, wait_seconds=55) until the
        status is "answered"; the task returns to in_progress once every question is answered.
        """
        return await run_as_agent(ctx, _ask, task_id=task_id, question=question, options=options)

    @tool(server, READ)
    async def check_response(
        ctx: Context,
        question_id: Annotated[int, Field(strict=True, gt=0)],
        wait_seconds: Annotated[
            float, Field(ge=0, le=WAIT_MAX, description="Wait up to this long for an answer.")
        ] = 0,
    ) -> dict[str, Any]:
        """The answer to your question, or status "pending".

        With wait_seconds (max 55) it returns as soon as someone answers, else when the time is
        up; call it again while it says pending.
        """
        first, agent_id = await run_as_agent(ctx, _question_asked, question_id=question_id)
        if first["status"] == "pending" and wait_seconds > 0:
            token, _ = caller_of(ctx)
            return await wait_for_answer(
                first, question_id=question_id, timeout=wait_seconds, agent_id=agent_id, token=token
            )
        return first

    @tool(server, EXTERNAL)
    async def create_branch(
        ctx: Context, task_id: TaskId, base: Annotated[str | None, Field(max_length=200)] = None
    ) -> dict[str, Any]:
        """Create the Gitea branch task/<id>-<slug> for your task (from the default branch).

        Idempotent: an existing branch is returned as it is. Push your commits to it.
        """
        return await run_as_agent(
            ctx, _integration_call, tool="create_branch", task_id=task_id, base=base
        )

    @tool(server, EXTERNAL)
    async def create_pull_request(
        ctx: Context,
        task_id: TaskId,
        title: Annotated[str | None, Field(max_length=settings.TASK_TITLE_MAX)] = None,
        body: Annotated[str | None, Field(max_length=settings.TEXT_FIELD_MAX)] = None,
    ) -> dict[str, Any]:
        """Open (or return the already open) pull request from your task branch to the default
        branch. Title defaults to the task's title."""
        return await run_as_agent(
            ctx,
            _integration_call,
            tool="create_pull_request",
            task_id=task_id,
            title=title,
            body=body,
        )

    @tool(server, EXTERNAL)
    async def trigger_preview_deploy(
        ctx: Context,
        task_id: TaskId,
        commit_sha: Annotated[str | None, Field(pattern=r"^[0-9a-f]{7,64}$")] = None,
    ) -> dict[str, Any]:
        """Queue the preview deployment of your task (at commit_sha, default the branch head).

        Returns the preview URL people will test; it answers once the deploy is up (the board
        shows its progress). Needs a pushed commit: the branch head, or pass commit_sha.
        """
        return await run_as_agent(
            ctx,
            _integration_call,
            tool="trigger_preview_deploy",
            task_id=task_id,
            commit_sha=commit_sha,
        )

    @tool(server, CONSUME)
    async def get_feedback(ctx: Context, task_id: TaskId) -> dict[str, Any]:
        """Review comments and change requests on your task you have not seen yet.

        Each item is returned once; after a change request the task is in_progress again.
        """
        return await run_as_agent(ctx, _feedback, task_id=task_id)

    @tool(server, MOVE)
    async def complete_task(ctx: Context, task_id: TaskId, summary: Text) -> dict[str, Any]:
        """Say your task is done: it moves to ready_to_test with your summary on its timeline.

        Do this after the pull request is open and the preview deploy is triggered.
        """
        return await run_as_agent(ctx, _complete, task_id=task_id, summary=summary)

    @tool(server, GIVE_UP)
    async def release_task(ctx: Context, task_id: TaskId, reason: Text) -> dict[str, Any]:
        """Give your task back to the backlog (you cannot finish it); say why in reason."""
        return await run_as_agent(ctx, _release, task_id=task_id, reason=reason)
