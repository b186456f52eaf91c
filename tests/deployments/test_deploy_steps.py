"""The steps of a deploy a person sees before it runs: a preview queued for its job, a release
merging, then queued. Real local forge and driver, real channel layer (in-memory or Redis)."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from aiworker.actors import Actor
from aiworker.live import project_group
from deployments import jobs, services
from deployments.models import Deployment, Release
from deployments.releases import release_merge_to_staging
from projects.forges.local import LocalForge
from tasks.models import TaskEvent
from tests import factories
from tests.deployments.test_local_driver import in_progress, local, push_task_commit  # noqa: F401

SYSTEM = Actor.system("test")


def heard(project_id: int, action: Callable[[], Any]) -> tuple[Any, list[tuple[str, dict]]]:
    """What a board's socket of the project hears while `action` runs (one event loop for the
    whole listen: channels_redis binds a channel's queue to the loop that made it)."""

    async def listen() -> tuple[Any, list[tuple[str, dict]]]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(project_group(project_id), channel)
        result = await sync_to_async(action, thread_sensitive=True)()
        got = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), 0.5)
            except TimeoutError:
                break
            got.append((message["event"], message["data"]))
        await layer.group_discard(project_group(project_id), channel)
        return result, got

    return async_to_sync(listen)()


@pytest.fixture
def recorded_jobs(monkeypatch) -> dict[str, list[dict]]:
    """The test plays the Celery worker: jobs are recorded, and run when the test says."""
    found: dict[str, list[dict]] = {"preview": [], "release": []}
    monkeypatch.setattr(jobs.deploy_preview, "delay", lambda **kw: found["preview"].append(kw))
    monkeypatch.setattr(jobs.deploy_release, "delay", lambda **kw: found["release"].append(kw))
    return found


@pytest.mark.django_db(transaction=True)
def test_a_preview_is_queued_until_its_job_runs(local, recorded_jobs, client):  # noqa: F811
    project, checkout, _ = local
    task = in_progress(project, checkout, "queued\n")
    _, events = heard(project.pk, lambda: services.preview_queue(task_id=task.pk, actor=SYSTEM))

    deployment = Deployment.objects.get(task=task)
    assert deployment.status == "pending" and deployment.step == "queued"
    assert deployment.commit_sha == task.head_sha and deployment.expires_at is not None
    event = TaskEvent.objects.get(task=task, kind="deploy.queued")
    assert task.head_sha[:12] in event.message
    assert [(e, d["status"], d["task_id"]) for e, d in events] == [
        ("deploy.queued", "pending", task.pk)
    ]
    client.force_login(factories.make_user(is_superuser=True))
    card = client.get(f"/projects/{project.slug}/board/cards/{task.pk}/").json()
    assert "preview queued" in card["html"]

    # the worker takes it
    _, events = heard(project.pk, lambda: jobs.deploy_preview(**recorded_jobs["preview"][0]))
    deployment.refresh_from_db()
    assert deployment.status == "ready"
    assert [e for e, _ in events if e.startswith("deploy.")] == [
        "deploy.started",
        "deploy.completed",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_queued_preview_whose_task_moved_on_fails_with_the_reason(local, recorded_jobs):  # noqa: F811
    project, checkout, _ = local
    task = in_progress(project, checkout, "too late\n")
    services.preview_queue(task_id=task.pk, actor=SYSTEM)
    task.state = "cancelled"
    task.save()

    assert jobs.deploy_preview(**recorded_jobs["preview"][0]).startswith("skipped:")

    deployment = Deployment.objects.get(task=task)
    assert deployment.status == "failed"
    assert deployment.error.startswith("Not deployed: ") and "cancelled" in deployment.error


@pytest.mark.django_db(transaction=True)
def test_queueing_a_running_preview_keeps_it_up_while_the_job_waits(local, recorded_jobs):  # noqa: F811
    project, checkout, _ = local
    task = in_progress(project, checkout, "up\n")
    running = services.preview_deploy(task_id=task.pk, actor=SYSTEM)
    _, events = heard(project.pk, lambda: services.preview_queue(task_id=task.pk, actor=SYSTEM))

    running.refresh_from_db()
    assert running.status == "ready" and running.url  # the link still works meanwhile
    assert [(e, d["status"]) for e, d in events] == [("deploy.queued", "pending")]


@pytest.mark.django_db(transaction=True)
def test_a_bad_preview_request_queues_nothing(local, recorded_jobs):  # noqa: F811
    from aiworker import errors

    project, checkout, _ = local
    task = in_progress(project, checkout, "bad\n")

    def bad() -> None:
        with pytest.raises(errors.InvalidInput):
            services.preview_queue(task_id=task.pk, actor=SYSTEM, commit_sha="not-a-sha")

    _, events = heard(project.pk, bad)

    assert not Deployment.objects.exists() and not recorded_jobs["preview"]
    assert not TaskEvent.objects.filter(kind="deploy.queued").exists()
    assert events == []


def _approved_with_pr(project, checkout, title: str):
    task = factories.make_task(project=project, state="approved", title=title)
    push_task_commit(checkout, task, f"{title}\n")
    pr, _ = LocalForge(project).open_pull_request(
        head=f"task/{task.pk}", base="main", title=title, body=""
    )
    task.pr_number = pr.number
    task.save()
    return task


@pytest.mark.django_db(transaction=True)
def test_a_merge_to_staging_says_merging_then_queued_and_names_a_task_not_merged(
    local,  # noqa: F811
    recorded_jobs,
):
    project, checkout, _ = local
    one = _approved_with_pr(project, checkout, "one")
    two = factories.make_task(project=project, state="approved", title="no pull request")
    release, events = heard(
        project.pk, lambda: release_merge_to_staging(task_ids=[one.pk, two.pk], actor=SYSTEM)
    )

    assert release.status == "pending" and release.step == "queued"
    steps = [(e, d["status"], d["task_ids"]) for e, d in events if e.startswith("deploy.")]
    assert steps[0] == ("deploy.merging", "merging", [one.pk, two.pk])
    assert ("deploy.failed", "failed", [two.pk]) in steps
    assert steps[-1] == ("deploy.queued", "pending", [one.pk])
    assert recorded_jobs["release"] == [{"release_id": release.pk}]
    assert Release.objects.get().pk == release.pk
