"""The gitops driver and the preview services on real git repositories (a bare repo in
tmp_path): each operation leaves the repository exactly as expected, and running it twice
changes nothing more."""

from datetime import timedelta

import pytest
from django.utils import timezone

from aiworker import errors
from deployments import services
from deployments.models import Deployment
from tasks.models import Task, TaskEvent
from tests import factories

PREVIEW_FILES = [
    "00-namespace-preview-task-{id}.yaml",
    "01-resourcequota-quota.yaml",
    "02-limitrange-limits.yaml",
    "03-networkpolicy-default-deny-ingress.yaml",
    "04-deployment-app.yaml",
    "05-service-app.yaml",
    "06-ingress-app.yaml",
]


def expected_files(task_id):
    return [f"preview/preview-task-{task_id}/{f.format(id=task_id)}" for f in PREVIEW_FILES]


def deploy(task, sha=None):
    return services.preview_deploy(task_id=task.pk, actor=factories.system(), commit_sha=sha)


def test_deploy_commits_the_preview_and_shows_its_url(gitops, preview_task):
    deployment = deploy(preview_task)
    assert deployment.status == "ready" and deployment.error == ""
    assert gitops.files() == expected_files(preview_task.pk)
    assert gitops.commits() == 1
    image = gitops.read(f"preview/preview-task-{preview_task.pk}/04-deployment-app.yaml")["spec"][
        "template"
    ]["spec"]["containers"][0]["image"]
    assert image == "registry.example.test/acme/shop:" + "a" * 40
    preview_task.refresh_from_db()
    assert preview_task.preview_url == f"https://task-{preview_task.pk}.preview.example.test/"
    kinds = list(preview_task.events.values_list("kind", flat=True))
    assert kinds == ["deploy.started", "deploy.completed"]


def test_deploy_broadcasts_started_then_completed(
    gitops, preview_task, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        "aiworker.live.send_now", lambda **kw: sent.append((kw["event"], kw["data"]["status"]))
    )
    with django_capture_on_commit_callbacks(execute=True):
        deploy(preview_task)
    assert sent == [("deploy.started", "deploying"), ("deploy.completed", "ready")]


def test_redeploy_same_sha_is_no_new_commit_and_new_sha_updates_the_image(gitops, preview_task):
    first = deploy(preview_task)
    deploy(preview_task)
    assert gitops.commits() == 1
    # Same content except the deployed-at annotation, rendered to the second: freeze it.
    second = deploy(preview_task, sha="b" * 40)
    assert second.pk == first.pk
    assert Deployment.objects.count() == 1
    assert gitops.commits() == 2
    assert gitops.files() == expected_files(preview_task.pk)
    doc = gitops.read(f"preview/preview-task-{preview_task.pk}/04-deployment-app.yaml")
    assert doc["spec"]["template"]["spec"]["containers"][0]["image"].endswith("b" * 40)


def test_destroy_removes_the_directory_and_twice_changes_nothing(gitops, preview_task):
    other = factories.make_task(
        project=preview_task.project, state="in_progress", head_sha="c" * 40
    )
    deploy(preview_task)
    deploy(other)
    assert services.preview_destroy(task_id=preview_task.pk, actor=factories.system()) == 1
    assert gitops.files() == expected_files(other.pk)
    commits = gitops.commits()
    assert services.preview_destroy(task_id=preview_task.pk, actor=factories.system()) == 0
    assert gitops.commits() == commits
    preview_task.refresh_from_db()
    assert preview_task.preview_url == ""
    assert Deployment.objects.get(task=preview_task).status == "destroyed"


def test_cancelling_a_task_destroys_its_preview(
    gitops, preview_task, django_capture_on_commit_callbacks, eager_jobs
):
    from tasks.services import task_transition

    deploy(preview_task)
    with django_capture_on_commit_callbacks(execute=True):
        task_transition(task_id=preview_task.pk, to_state="cancelled", actor=factories.system())
    assert gitops.files() == []
    assert Deployment.objects.get(task=preview_task).status == "destroyed"


def test_ttl_expiry_removes_only_expired_previews_and_twice_changes_nothing(gitops, preview_task):
    keep = factories.make_task(project=preview_task.project, state="in_progress", head_sha="c" * 40)
    deploy(preview_task)
    deploy(keep)
    Deployment.objects.filter(task=preview_task).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert services.previews_expire() == 1
    assert gitops.files() == expected_files(keep.pk)
    commits = gitops.commits()
    assert services.previews_expire() == 0
    assert gitops.commits() == commits
    assert Deployment.objects.get(task=preview_task).status == "expired"
    assert TaskEvent.objects.filter(task=preview_task, kind="deploy.expired").count() == 1


def test_extend_pushes_expiry_later_and_rewrites_the_annotation(gitops, preview_task):
    deployment = deploy(preview_task)
    before = deployment.expires_at
    extended = services.preview_extend(
        deployment_id=deployment.pk, actor=factories.system(), by=timedelta(days=2)
    )
    assert extended.expires_at == before + timedelta(days=2)
    ns = gitops.read(
        f"preview/preview-task-{preview_task.pk}/00-namespace-preview-task-{preview_task.pk}.yaml"
    )
    assert ns["metadata"]["annotations"]["aiworker.dev/expires-at"] == (
        extended.expires_at.replace(microsecond=0).isoformat()
    )
    assert services.previews_expire(now=before + timedelta(days=1)) == 0


def test_gc_collects_orphans_after_the_window_and_never_a_live_task(gitops, preview_task):
    orphan = factories.make_task(
        project=preview_task.project, state="in_progress", head_sha="c" * 40
    )
    gone_project = factories.make_project(image_repository="reg/y")
    gone = factories.make_task(project=gone_project, state="in_progress", head_sha="d" * 40)
    for task in (preview_task, orphan, gone):
        deploy(task)
    orphan_id = orphan.pk
    Task.objects.filter(pk=orphan_id).delete()
    gone_project.delete()
    # Inside the safety window nothing goes.
    assert services.resources_garbage_collect() == 0
    assert len(gitops.directories()) == 3
    later = timezone.now() + timedelta(hours=2)
    assert services.resources_garbage_collect(now=later) == 2
    assert gitops.directories() == [f"preview/preview-task-{preview_task.pk}"]
    commits = gitops.commits()
    assert services.resources_garbage_collect(now=later) == 0
    assert gitops.commits() == commits
    # Even with no Deployment row left, an existing task keeps its resources.
    Deployment.objects.all().delete()
    assert services.resources_garbage_collect(now=later + timedelta(days=30)) == 0
    assert gitops.directories() == [f"preview/preview-task-{preview_task.pk}"]


def test_ttl_job_cleans_a_thousand_expired_previews_in_one_run(gitops, preview_project):
    tasks = Task.objects.bulk_create(
        Task(project=preview_project, title=f"t{i}", state="in_progress", head_sha="e" * 40)
        for i in range(1000)
    )
    tasks = list(Task.objects.filter(project=preview_project).order_by("pk"))
    past = timezone.now() - timedelta(hours=1)
    Deployment.objects.bulk_create(
        Deployment(
            project=preview_project,
            task=t,
            environment="preview",
            driver="gitops",
            namespace=f"preview-task-{t.pk}",
            status="ready",
            expires_at=past,
        )
        for t in tasks
    )
    # The repository holds their directories, written in one commit as a deploy would.
    from deployments.drivers.gitops import GitOpsDriver

    driver = GitOpsDriver(gitops.url)

    def write(tree):
        for t in tasks:
            d = tree.work / "preview" / f"preview-task-{t.pk}"
            d.mkdir(parents=True)
            (d / "00-namespace.yaml").write_text("kind: Namespace\n")
        tree.git("add", "--", "preview")

    driver.change(write, message="seed")
    assert len(gitops.directories()) == 1000
    assert services.previews_expire() == 1000
    assert gitops.files() == []
    assert Deployment.objects.filter(status="expired").count() == 1000
    assert TaskEvent.objects.filter(kind="deploy.expired").count() == 1000
    assert services.previews_expire() == 0


@pytest.mark.parametrize(
    ("change", "sha", "error"),
    [
        ({}, "not-a-sha", errors.InvalidInput),
        ({"head_sha": ""}, None, errors.InvalidInput),
        ({"state": "backlog"}, None, errors.Conflict),
        ({"state": "cancelled"}, None, errors.Conflict),
    ],
)
def test_bad_preview_requests_change_nothing(gitops, preview_task, change, sha, error):
    Task.objects.filter(pk=preview_task.pk).update(**change)
    with pytest.raises(error):
        deploy(preview_task, sha=sha)
    assert Deployment.objects.count() == 0
    assert TaskEvent.objects.count() == 0
    assert not gitops.path.exists() or gitops.commits() == 0
    preview_task.refresh_from_db()
    assert preview_task.preview_url == ""


def test_disabled_driver_answers_not_configured_and_changes_nothing(settings, preview_task):
    settings.DEPLOY_DRIVER = "disabled"
    with pytest.raises(errors.NotConfigured, match="DEPLOY_DRIVER"):
        deploy(preview_task)
    assert Deployment.objects.count() == 0
    assert services.previews_expire() == 0


def test_an_agent_may_not_deploy_another_agents_task(gitops, preview_task):
    from aiworker.actors import Actor

    agent, _ = factories.make_agent()
    with pytest.raises(errors.PermissionDenied):
        services.preview_deploy(task_id=preview_task.pk, actor=Actor.of_agent(agent))
    assert Deployment.objects.count() == 0


def test_concurrent_commits_are_serialised_and_none_is_lost(gitops):
    """Eight threads commit eight previews at once: the lock keeps every one of them."""
    import threading
    from datetime import UTC, datetime

    from deployments import manifests as m
    from deployments.drivers.base import Place
    from deployments.drivers.gitops import GitOpsDriver

    now = datetime(2026, 1, 1, tzinfo=UTC)

    def one(n):
        target = m.Target(
            namespace=f"preview-task-{n}",
            host=f"task-{n}.x.test",
            image=f"r/x:{n:07d}",
            port=8000,
            environment="preview",
            project_slug="p",
            project_id=1,
            task_id=n,
            deployed_at=now,
            expires_at=now,
        )
        GitOpsDriver(gitops.url).apply(Place("preview", target.namespace, "p"), m.render(target))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert gitops.directories() == sorted(f"preview/preview-task-{n}" for n in range(1, 9))
    assert gitops.commits() == 8


def test_gitops_errors_never_show_credentials():
    from deployments.drivers.gitops import redact

    text = "fatal: unable to access 'https://bot:s3cret-token@gitea.example.test/x.git/'"
    assert "s3cret" not in redact(text) and "https://gitea.example.test/x.git/" in redact(text)
