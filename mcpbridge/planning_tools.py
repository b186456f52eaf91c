"""Planning tools (SPEC §6), for agents with the can-plan flag, within their project restriction.

Each tool asks the roles' question the board and the REST API ask,
``Actor.has_perm(PERM, project)`` (projects/roles.py): list_projects and list_tasks need
VIEW_BOARD, create_task and create_subtasks CREATE_TASK, submit_specification EDIT_TASK. For an
agent the answer is projects/roles.agent_has_perm: a planner is a member for planning, in its
project only when it has one.
"""

from typing import Annotated, Any, Literal

from django.conf import settings
from django.db.models import Count
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, ConfigDict, Field

from agents.models import Agent
from aiworker import errors
from aiworker.actors import Actor
from mcpbridge import context as shape
from mcpbridge.auth import run_as_agent
from mcpbridge.tool_meta import ADD, OVERWRITE, READ, tool
from projects import roles
from projects.models import Project
from tasks import planning
from tasks import services as task_services
from tasks.models import Task
from tasks.states import TaskState

LIST_LIMIT = 200
PriorityName = Literal["low", "medium", "high", "urgent"]
Text = Annotated[str, Field(max_length=settings.TEXT_FIELD_MAX)]


class SubtaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=settings.TASK_TITLE_MAX)]
    description: Text = ""
    priority: PriorityName | None = None
    depends_on: list[int | str] = Field(
        default_factory=list,
        description="Existing task ids (integers) and/or 'new:N' for the N-th subtask "
        "(0-based) of this same call.",
        max_length=planning.MAX_SUBTASKS,
    )


def _require_planner(agent: Agent) -> None:
    if not agent.can_plan:
        raise errors.PermissionDenied(
            f"Agent {agent.name} may not plan: planning tools need the can-plan flag "
            "(an operator sets it on the agent)."
        )


def _may(agent: Agent, perm: str, project: Project) -> None:
    """The roles' question, as every surface asks it (PermissionDenied naming why not)."""
    if not Actor.of_agent(agent).has_perm(perm, project):
        raise errors.PermissionDenied(roles.agent_denied_message(agent, perm, project))


def _projects(*, agent: Agent) -> dict[str, Any]:
    _require_planner(agent)
    scope = Project.objects.all()
    if agent.project_id:
        scope = scope.filter(pk=agent.project_id)
    visible = [
        p for p in scope.order_by("name") if Actor.of_agent(agent).has_perm(roles.VIEW_BOARD, p)
    ]
    scope = scope.filter(pk__in=[p.pk for p in visible])
    counts: dict[int, dict[str, int]] = {}
    rows = Task.objects.filter(project__in=scope).values("project_id", "state")
    for row in rows.annotate(n=Count("id")):
        counts.setdefault(row["project_id"], {})[row["state"]] = row["n"]
    return {
        "projects": [
            {
                "slug": p.slug,
                "name": p.name,
                "default_branch": p.default_branch,
                "tasks_by_state": counts.get(p.pk, {}),
            }
            for p in scope.order_by("name")
        ]
    }


def _tasks(*, agent: Agent, project: str, state: str | None) -> dict[str, Any]:
    _require_planner(agent)
    scope = shape.agent_project(agent, project)
    if scope is None:
        raise errors.InvalidInput("project is required.", fields={"project": ["Required."]})
    _may(agent, roles.VIEW_BOARD, scope)
    tasks = (
        Task.objects.filter(project=scope)
        .select_related("assigned_agent")
        .prefetch_related("depends_on")
        .order_by("state", "-priority", "position", "id")
    )
    if state:
        tasks = tasks.filter(state=state)
    total = tasks.count()
    return {
        "project": scope.slug,
        "total": total,
        "tasks": [shape.task_summary(t) for t in tasks[:LIST_LIMIT]],
        "truncated": total > LIST_LIMIT,
    }


def _create(*, agent: Agent, project: str, title: str, description: str, priority: str) -> dict:
    _require_planner(agent)
    scope = shape.agent_project(agent, project)
    if scope is None:
        raise errors.InvalidInput("project is required.", fields={"project": ["Required."]})
    _may(agent, roles.CREATE_TASK, scope)
    task = task_services.task_create(
        project=scope,
        title=title,
        description=description,
        priority=priority,
        actor=Actor.of_agent(agent),
    )
    return {"task": shape.task_summary(task)}


def _specify(*, agent: Agent, task_id: int, spec: dict[str, str]) -> dict[str, Any]:
    _require_planner(agent)
    _may(agent, roles.EDIT_TASK, shape.visible_task(agent, task_id).project)
    if not spec:
        raise errors.InvalidInput(
            "Give at least one specification field.", fields={"spec": ["Empty."]}
        )
    task = task_services.task_update(task_id=task_id, actor=Actor.of_agent(agent), spec=spec)
    return {"task_id": task.pk, "specification": shape.specification(task)}


def _subtasks(*, agent: Agent, task_id: int, subtasks: list[dict[str, Any]]) -> dict:
    _require_planner(agent)
    _may(agent, roles.CREATE_TASK, shape.visible_task(agent, task_id).project)
    created = planning.task_create_subtasks(
        parent_id=task_id, subtasks=subtasks, actor=Actor.of_agent(agent)
    )
    return {"parent_id": task_id, "subtasks": [shape.task_summary(t) for t in created]}


def register(server: MCPServer) -> None:
    @tool(server, READ)
    async def list_projects(ctx: Context) -> dict[str, Any]:
        """Projects you may plan for, with their task counts per state. Needs can-plan."""
        return await run_as_agent(ctx, _projects)

    @tool(server, READ)
    async def list_tasks(
        ctx: Context,
        project: Annotated[str, Field(max_length=60, description="Project slug.")],
        state: TaskState | None = None,
    ) -> dict[str, Any]:
        """A project's tasks (at most 200), optionally of one state. Needs can-plan."""
        return await run_as_agent(
            ctx, _tasks, project=project, state=state.value if state else None
        )

    @tool(server, ADD)
    async def create_task(
        ctx: Context,
        project: Annotated[str, Field(max_length=60, description="Project slug.")],
        title: Annotated[str, Field(min_length=1, max_length=settings.TASK_TITLE_MAX)],
        description: Text,
        priority: PriorityName = "medium",
    ) -> dict[str, Any]:
        """Create a backlog task in a project. Needs can-plan."""
        return await run_as_agent(
            ctx, _create, project=project, title=title, description=description, priority=priority
        )

    @tool(server, OVERWRITE)
    async def submit_specification(
        ctx: Context,
        task_id: Annotated[int, Field(strict=True, gt=0)],
        goals: Text | None = None,
        context: Text | None = None,
        architecture: Text | None = None,
        edge_cases: Text | None = None,
        acceptance_criteria: Text | None = None,
        complexity: Literal["small", "medium", "large"] | None = None,
    ) -> dict[str, Any]:
        """Write the specification of a task; only the fields you give change. Needs can-plan."""
        given = {
            "goals": goals,
            "context": context,
            "architecture": architecture,
            "edge_cases": edge_cases,
            "acceptance_criteria": acceptance_criteria,
            "complexity": complexity,
        }
        spec = {k: v for k, v in given.items() if v is not None}
        return await run_as_agent(ctx, _specify, task_id=task_id, spec=spec)

    @tool(server, ADD)
    async def create_subtasks(
        ctx: Context,
        task_id: Annotated[int, Field(strict=True, gt=0, description="The parent task.")],
        subtasks: Annotated[list[SubtaskIn], Field(min_length=1, max_length=50)],
    ) -> dict[str, Any]:
        """Split a task into subtasks with dependencies between them. Needs can-plan.

        depends_on lists existing task ids (integers) and "new:N" for the N-th subtask of this
        call (0-based). The whole graph is checked (unknown ids, cycles) before anything is
        written: either every subtask is created or none.
        """
        items = [s.model_dump(exclude_none=True) for s in subtasks]
        return await run_as_agent(ctx, _subtasks, task_id=task_id, subtasks=items)
