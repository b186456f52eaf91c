"""tasks.planning.task_create_subtasks, and the planning tools over streamable HTTP."""

import pytest

from aiworker import errors
from tasks.models import Task, TaskEvent
from tasks.planning import task_create_subtasks
from tests import factories
from tests.mcpbridge.conftest import call, http_client, run, snapshot


def test_subtasks_with_dependencies_by_index_and_id(db):
    parent = factories.make_task(priority=2)
    done = factories.make_task(project=parent.project, state="staging")
    created = task_create_subtasks(
        parent_id=parent.pk,
        subtasks=[
            {"title": "Schema", "description": "tables", "depends_on": [done.pk]},
            {"title": "API", "depends_on": ["new:0"]},
            {"title": "UI", "priority": 3, "depends_on": ["new:0", "new:1"]},
        ],
        actor=factories.system(),
    )
    schema, api, ui = created
    assert [t.parent_id for t in created] == [parent.pk] * 3
    assert [t.priority for t in created] == [2, 2, 3]
    assert list(schema.depends_on.all()) == [done]
    assert list(api.depends_on.all()) == [schema]
    assert set(ui.depends_on.all()) == {schema, api}
    assert TaskEvent.objects.filter(task=parent, kind="subtasks_created").count() == 1
    assert TaskEvent.objects.filter(kind="created").count() == 3


@pytest.mark.parametrize(
    ("subtasks", "message"),
    [
        (
            [{"title": "a", "depends_on": ["new:1"]}, {"title": "b", "depends_on": ["new:0"]}],
            "cycle",
        ),
        ([{"title": "a", "depends_on": ["new:0"]}], "itself"),
        ([{"title": "a", "depends_on": ["new:5"]}], "refers to no subtask"),
        ([{"title": "a", "depends_on": [999999]}], "not in project"),
        ([{"title": "a", "depends_on": ["zero"]}], "neither a task id"),
        ([{"title": "a"}, {"title": ""}], r"subtasks\[1\]: title is required"),
        ([{"title": "a", "colour": "red"}], "unknown fields"),
        ([{"title": "x" * 201}], "too long"),
        ([], "non-empty list"),
    ],
)
def test_bad_subtasks_write_nothing(db, subtasks, message):
    parent = factories.make_task()
    before = (Task.objects.count(), TaskEvent.objects.count())
    with pytest.raises(errors.InvalidInput, match=message):
        task_create_subtasks(parent_id=parent.pk, subtasks=subtasks, actor=factories.system())
    assert (Task.objects.count(), TaskEvent.objects.count()) == before


def test_cycle_through_existing_tasks_is_refused(db):
    parent = factories.make_task()
    existing = factories.make_task(project=parent.project)
    other_project_task = factories.make_task()
    # existing depends on nothing; a new subtask depending on it is fine, but a task of
    # another project is unknown here.
    with pytest.raises(errors.InvalidInput, match="not in project"):
        task_create_subtasks(
            parent_id=parent.pk,
            subtasks=[{"title": "a", "depends_on": [existing.pk, other_project_task.pk]}],
            actor=factories.system(),
        )
    assert Task.objects.filter(parent=parent).count() == 0


@pytest.mark.django_db(transaction=True)
def test_planning_tools(mcp_url):
    project = factories.make_project()
    other = factories.make_project()
    factories.make_task(project=other)
    _, token = factories.make_agent(project=project, can_plan=True)

    async def scenario():
        async with http_client(mcp_url, token) as client:
            projects = await call(client, "list_projects")
            created = await call(
                client,
                "create_task",
                project=project.slug,
                title="Epic",
                description="big",
                priority="high",
            )
            epic_id = created[1]["task"]["id"]
            spec = await call(
                client, "submit_specification", task_id=epic_id, goals="G", complexity="large"
            )
            subtasks = await call(
                client,
                "create_subtasks",
                task_id=epic_id,
                subtasks=[
                    {"title": "One", "description": "d"},
                    {"title": "Two", "depends_on": ["new:0"]},
                ],
            )
            listed = await call(client, "list_tasks", project=project.slug)
            backlog = await call(client, "list_tasks", project=project.slug, state="in_progress")
            return projects, created, spec, subtasks, listed, backlog

    projects, created, spec, subtasks, listed, backlog = run(scenario())
    assert not any(answer[0] for answer in (projects, created, spec, subtasks, listed, backlog))
    assert [p["slug"] for p in projects[1]["projects"]] == [project.slug]  # the restriction
    assert created[1]["task"]["priority"] == "high"
    assert spec[1]["specification"]["goals"] == "G"
    assert spec[1]["specification"]["complexity"] == "large"
    one, two = subtasks[1]["subtasks"]
    assert two["depends_on"] == [one["id"]]
    assert listed[1]["total"] == 3 and backlog[1]["tasks"] == []
    epic = Task.objects.get(pk=created[1]["task"]["id"])
    assert epic.spec_goals == "G" and epic.subtasks.count() == 2

    before = snapshot()

    async def refused():
        async with http_client(mcp_url, token) as client:
            return [
                await call(client, "list_tasks", project=other.slug),
                await call(client, "create_task", project=other.slug, title="x", description=""),
                await call(client, "create_task", project=project.slug, title="", description=""),
                await call(client, "submit_specification", task_id=epic.pk, complexity="huge"),
                await call(client, "submit_specification", task_id=epic.pk),
                await call(
                    client,
                    "create_subtasks",
                    task_id=epic.pk,
                    subtasks=[
                        {"title": "A", "depends_on": ["new:1"]},
                        {"title": "B", "depends_on": ["new:0"]},
                    ],
                ),
                await call(client, "create_subtasks", task_id=999999, subtasks=[{"title": "A"}]),
            ]

    answers = run(refused())
    expected = [
        "may only work on",
        "may only work on",
        "at least 1",
        "small",
        "at least one",
        "cycle",
        "does not exist",
    ]
    for (error, text), want in zip(answers, expected, strict=True):
        assert error and want in text, text
    assert snapshot() == before
