"""trigger_preview_deploy over MCP HTTP with the gitops driver and a real bare git repository.

The tool queues the deploy job (deployments.services.preview_queue); the job runs eagerly in
this process (the embedded default; forced here when REDIS_URL points Celery at a broker no
worker reads in tests). The driver commits to a bare repository in tmp_path, read back with
the git CLI. Nothing is mocked.
"""

import pytest

from deployments.models import Deployment
from tests import factories
from tests.deployments.conftest import Repo
from tests.mcpbridge.conftest import call, http_client, run, snapshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gitops(settings, tmp_path) -> Repo:
    settings.DEPLOY_DRIVER = "gitops"
    settings.GITOPS_REPO_URL = str(tmp_path / "gitops.git")
    settings.PREVIEW_DOMAIN = "preview.example.test"
    return Repo(tmp_path / "gitops.git")


@pytest.fixture
def eager_jobs():
    from aiworker.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def preview_project(db):
    return factories.make_project(
        image_repository="registry.example.test/acme/shop", preview_port=8080
    )


def _held_task(project, agent, **fields):
    return factories.make_task(project=project, state="in_progress", assigned_agent=agent, **fields)


def test_trigger_preview_deploy_queues_and_returns_the_url(
    gitops, eager_jobs, preview_project, mcp_url
):
    agent, token = factories.make_agent()
    task = _held_task(preview_project, agent, head_sha="b" * 40)

    async def scenario():
        async with http_client(mcp_url, token) as client:
            return await call(client, "trigger_preview_deploy", task_id=task.pk)

    error, answer = run(scenario())
    url = f"https://task-{task.pk}.preview.example.test/"
    assert not error, answer
    assert answer["task_id"] == task.pk
    assert answer["preview_url"] == url and answer["queued"] is True
    deployment = Deployment.objects.get(task=task)
    assert deployment.status == "ready" and deployment.url == url
    assert gitops.commits() == 1
    image = gitops.read(f"preview/preview-task-{task.pk}/04-deployment-app.yaml")["spec"][
        "template"
    ]["spec"]["containers"][0]["image"]
    assert image == "registry.example.test/acme/shop:" + "b" * 40
    task.refresh_from_db()
    assert task.preview_url == url
    # queued (the card says "preview queued" until a worker takes the job), then the job's steps
    assert list(task.events.values_list("kind", flat=True)) == [
        "deploy.queued",
        "deploy.started",
        "deploy.completed",
    ]


@pytest.mark.parametrize("case", ["another agent's task", "no head commit", "bad sha"])
def test_trigger_preview_deploy_refusals_change_nothing(
    gitops, eager_jobs, preview_project, mcp_url, case
):
    agent, token = factories.make_agent()
    other, _ = factories.make_agent()
    if case == "another agent's task":
        task = _held_task(preview_project, other, head_sha="c" * 40)
        arguments, expected = {"task_id": task.pk}, "[permission_denied]"
    elif case == "no head commit":
        task = _held_task(preview_project, agent)
        arguments, expected = {"task_id": task.pk}, "[invalid]"
    else:
        task = _held_task(preview_project, agent, head_sha="c" * 40)
        arguments, expected = (
            {"task_id": task.pk, "commit_sha": "XYZ"},
            "[invalid] commit_sha must match",
        )
    # Any call is a heartbeat (a starting agent becomes idle): not what is checked here.
    type(agent).objects.filter(pk=agent.pk).update(status="idle")
    before = snapshot()

    async def scenario():
        async with http_client(mcp_url, token) as client:
            return await call(client, "trigger_preview_deploy", **arguments)

    error, text = run(scenario())
    assert error and expected in text, text
    assert snapshot() == before
    assert not Deployment.objects.exists()
    assert gitops.commits() == 0
