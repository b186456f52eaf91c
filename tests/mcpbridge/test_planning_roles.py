"""The planning tools ask the roles' question (projects/roles.py) for the calling agent, through
the real MCP client over streamable HTTP: an agent without the can-plan flag, a planner outside
its project, or a planner whose flag an operator just removed, is refused by every planning
tool, and nothing changes."""

import pytest

from agents.models import Agent
from aiworker.actors import Actor
from projects import roles
from tests import factories
from tests.mcpbridge.conftest import call, http_client, run, snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def _every_planning_call(project_slug: str, task_id: int) -> list[tuple[str, dict]]:
    return [
        ("list_tasks", {"project": project_slug}),
        ("create_task", {"project": project_slug, "title": "sneaky", "description": ""}),
        ("submit_specification", {"task_id": task_id, "goals": "overwritten"}),
        ("create_subtasks", {"task_id": task_id, "subtasks": [{"title": "sneaky"}]}),
    ]


def _answers(url: str, token: str, calls: list[tuple[str, dict]]) -> list[tuple[bool, object]]:
    async def scenario():
        async with http_client(url, token) as client:
            return [await call(client, tool, **arguments) for tool, arguments in calls]

    return run(scenario())


def _settled(url: str, token: str) -> tuple:
    """The snapshot once the agent has called once: any call marks a starting agent idle."""
    _answers(url, token, [("get_context", {})])
    return snapshot()


def test_an_agent_without_can_plan_is_refused_by_every_planning_tool(mcp_url):
    project = factories.make_project()
    task = factories.make_task(project=project, title="Epic")
    _, token = factories.make_agent(project=project, can_plan=False)
    before = _settled(mcp_url, token)
    calls = [("list_projects", {}), *_every_planning_call(project.slug, task.pk)]
    for error, text in _answers(mcp_url, token, calls):
        assert error and "[permission_denied]" in text and "can-plan" in text, text
    assert snapshot() == before


def test_a_planner_is_refused_outside_its_project(mcp_url):
    mine, theirs = factories.make_project(), factories.make_project()
    their_task = factories.make_task(project=theirs, title="Theirs", spec_goals="kept")
    _, token = factories.make_agent(project=mine, can_plan=True)
    before = _settled(mcp_url, token)
    answers = _answers(mcp_url, token, _every_planning_call(theirs.slug, their_task.pk))
    for error, text in answers:
        assert error and "[permission_denied]" in text, text
        assert "may only work on" in text or "another project" in text, text
    listed = _answers(mcp_url, token, [("list_projects", {})])[0]
    assert not listed[0] and [p["slug"] for p in listed[1]["projects"]] == [mine.slug]
    assert snapshot() == before


def test_removing_can_plan_takes_effect_on_the_next_call(mcp_url):
    project = factories.make_project()
    task = factories.make_task(project=project, title="Epic")
    agent, token = factories.make_agent(project=project, can_plan=True)
    assert not _answers(mcp_url, token, [("list_tasks", {"project": project.slug})])[0][0]
    Agent.objects.filter(pk=agent.pk).update(can_plan=False)  # an operator, in the admin
    before = snapshot()
    for error, text in _answers(mcp_url, token, _every_planning_call(project.slug, task.pk)):
        assert error and "can-plan" in text, text
    assert snapshot() == before


def test_an_agent_holds_the_planners_permissions_and_nothing_more(db):
    project, other = factories.make_project(), factories.make_project()
    planner, _ = factories.make_agent(project=project, can_plan=True)
    everywhere, _ = factories.make_agent(can_plan=True)
    worker, _ = factories.make_agent(project=project)
    as_planner, as_everywhere = Actor.of_agent(planner), Actor.of_agent(everywhere)
    for perm in roles.PERMISSIONS:
        held = perm in roles.PLANNER_PERMISSIONS
        assert as_planner.has_perm(perm, project) is held, perm
        assert as_everywhere.has_perm(perm, other) is held, perm
        assert as_planner.has_perm(perm, other) is False, perm
        assert Actor.of_agent(worker).has_perm(perm, project) is False, perm
        assert as_planner.has_perm(perm) is False, perm  # never a global grant
    Agent.objects.filter(pk=planner.pk).update(revoked_at="2026-01-01T00:00:00Z")
    planner.refresh_from_db()
    assert not Actor.of_agent(planner).has_perm(roles.VIEW_BOARD, project)
