"""The git flow (SPEC §9): merge approved tasks to staging, promote to production, against the
stand-in Gitea behind Prism."""

import pytest

from deployments.models import Release
from tasks.models import Task, TaskEvent
from tasks.services import forge
from tasks.states import TaskState
from tests import factories
from tests.projects.conftest import OWNER, REPO

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_deploy(monkeypatch):
    """The deployments app deploys releases in its own tests; here we record the calls."""
    from deployments import jobs

    calls: list[int] = []
    monkeypatch.setattr(jobs.deploy_release, "delay", lambda **kw: calls.append(kw["release_id"]))
    return calls


@pytest.fixture
def deploy_for_real(settings, tmp_path):
    """Run the recorded deploys with the gitops driver on a real bare repository in tmp_path
    (no Argo CD here: the gitops driver's commit is its report)."""
    from deployments import services as deploy_services

    settings.DEPLOY_DRIVER = "gitops"
    settings.GITOPS_REPO_URL = str(tmp_path / "gitops.git")

    def deploy(release_id):
        return deploy_services.release_deploy(release_id=release_id)

    return deploy


def _approved_task_with_pr(gitea, project, title):
    task = factories.make_task(project=project, title=title, state=TaskState.IN_PROGRESS)
    forge.task_create_branch(task_id=task.pk, actor=factories.system())
    gitea.push(OWNER, REPO, Task.objects.get(pk=task.pk).branch_name)
    forge.task_open_pull_request(task_id=task.pk, actor=factories.system())
    Task.objects.filter(pk=task.pk).update(state=TaskState.APPROVED)
    return Task.objects.get(pk=task.pk)


def test_merge_to_staging_with_a_conflict_on_one_task(
    gitea,
    repo_project,
    approver,
    client,
    _no_deploy,
    django_capture_on_commit_callbacks,
    deploy_for_real,
):
    repo_project.image_repository = "registry.example/shop"
    repo_project.save()
    one, two, three = (_approved_task_with_pr(gitea, repo_project, t) for t in ("A", "B", "C"))
    gitea.conflicts.add(two.pr_number)
    client.force_login(approver)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/releases/merge-to-staging/",
            {"task_ids": [one.pk, two.pk, three.pk]},
            content_type="application/json",
        )

    assert response.status_code == 201, response.content
    release = Release.objects.get()
    assert response.json()["id"] == release.pk
    assert release.environment == "staging"
    assert sorted(release.tasks.values_list("pk", flat=True)) == [one.pk, three.pk]
    repo = gitea.repos[(OWNER, REPO)]
    assert release.commit_sha == repo.branches["staging"]
    assert release.image == f"registry.example/shop:{release.commit_sha}"
    # Merged but not deployed yet: the release is queued (pending) for its deploy job, and
    # every task is still approved.
    assert release.status == "pending"
    assert set(Task.objects.values_list("state", flat=True)) == {"approved"}
    assert not TaskEvent.objects.filter(to_state="staging").exists()
    assert deploy_for_real(release.pk).status == "live"
    states = dict(Task.objects.values_list("pk", "state"))
    assert states == {one.pk: "staging", two.pk: "approved", three.pk: "staging"}
    failure = TaskEvent.objects.get(task=two, kind="merge_failed")
    assert "Merge conflict" in failure.message
    staging_pr = [p for p in repo.pulls if p["head"] == "main" and p["base"] == "staging"]
    assert len(staging_pr) == 1 and staging_pr[0]["merged"]
    assert _no_deploy == [release.pk]
    # The conflict is said on the PR too.
    assert "not merged to staging" in repo.comments[two.pr_number][0]["body"]


def test_merge_to_staging_refuses_bad_input_and_changes_nothing(
    gitea, repo_project, approver, user, client
):
    task = _approved_task_with_pr(gitea, repo_project, "A")
    backlog = factories.make_task(project=repo_project, state=TaskState.BACKLOG)
    gitea_before = len(gitea.log)
    cases = [
        (approver, {"task_ids": []}, 400),
        (approver, {"task_ids": ["x"]}, 400),
        (approver, {}, 400),
        (approver, {"task_ids": [999999]}, 404),
        (approver, {"task_ids": [task.pk, backlog.pk]}, 409),
        (user, {"task_ids": [task.pk]}, 403),
    ]
    for who, body, status in cases:
        client.force_login(who)
        response = client.post(
            "/api/releases/merge-to-staging/", body, content_type="application/json"
        )
        assert response.status_code == status, (body, response.content)
        assert response.json()["detail"]
    assert not Release.objects.exists()
    assert Task.objects.get(pk=task.pk).state == "approved"
    assert len(gitea.log) == gitea_before


def test_promote_needs_the_permission_then_merges_staging_into_production(
    gitea,
    repo_project,
    approver,
    client,
    _no_deploy,
    django_capture_on_commit_callbacks,
    deploy_for_real,
):
    repo_project.image_repository = "registry.example/shop"
    repo_project.save()
    task = _approved_task_with_pr(gitea, repo_project, "A")
    client.force_login(approver)
    with django_capture_on_commit_callbacks(execute=True):
        staging_id = client.post(
            "/api/releases/merge-to-staging/",
            {"task_ids": [task.pk]},
            content_type="application/json",
        ).json()["id"]
    deploy_for_real(staging_id)

    only_approver = factories.make_user(perms=("tasks.approve_task",))
    client.force_login(only_approver)
    refused = client.post(f"/api/releases/{staging_id}/promote/")
    assert refused.status_code == 403
    assert Release.objects.count() == 1 and Task.objects.get(pk=task.pk).state == "staging"

    client.force_login(approver)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/releases/{staging_id}/promote/")
    assert response.status_code == 201, response.content
    production = Release.objects.get(environment="production")
    staging = Release.objects.get(pk=staging_id)
    repo = gitea.repos[(OWNER, REPO)]
    assert production.commit_sha == repo.branches["production"]
    assert production.image == staging.image
    assert production.approved_by == approver
    assert Task.objects.get(pk=task.pk).state == "staging"  # until the deploy reports
    deploy_for_real(production.pk)
    assert Task.objects.get(pk=task.pk).state == "production"
    assert _no_deploy == [staging.pk, production.pk]

    again = client.post(f"/api/releases/{staging_id}/promote/")
    assert again.status_code == 409
    assert Release.objects.count() == 2


def test_merge_to_staging_without_gitea_says_not_configured(
    repo_project, approver, client, settings
):
    settings.GITEA_URL = ""
    task = factories.make_task(project=repo_project, state=TaskState.APPROVED, pr_number=1)
    client.force_login(approver)
    response = client.post(
        "/api/releases/merge-to-staging/", {"task_ids": [task.pk]}, content_type="application/json"
    )
    assert response.status_code == 503
    assert "Gitea is not configured" in response.json()["detail"]
    assert not Release.objects.exists() and not TaskEvent.objects.exists()


def test_admin_actions_connect_and_merge_to_staging(
    gitea, repo_project, admin_client, _no_deploy, deploy_for_real
):
    task = _approved_task_with_pr(gitea, repo_project, "A")

    connect = admin_client.post(
        "/admin/projects/project/",
        {"action": "connect_to_gitea", "_selected_action": [repo_project.pk]},
        follow=True,
    )
    merge = admin_client.post(
        "/admin/tasks/task/",
        {"action": "merge_to_staging", "_selected_action": [task.pk]},
        follow=True,
    )

    assert "connected to Gitea" in connect.content.decode()
    assert "1 of 1 task(s) merged" in merge.content.decode()
    assert len(gitea.repos[(OWNER, REPO)].hooks) == 1
    assert Task.objects.get(pk=task.pk).state == "approved"  # merged, not yet deployed
    # No image on the project: nothing to deploy, so the deploy succeeds at once.
    release = Release.objects.get()
    assert deploy_for_real(release.pk).status == "live"
    assert Task.objects.get(pk=task.pk).state == "staging"


def test_a_failed_deploy_leaves_the_tasks_approved_and_says_why(
    gitea,
    repo_project,
    approver,
    client,
    _no_deploy,
    django_capture_on_commit_callbacks,
    deploy_for_real,
    monkeypatch,
):
    repo_project.image_repository = "registry.example/shop"
    repo_project.save()
    task = _approved_task_with_pr(gitea, repo_project, "A")
    client.force_login(approver)
    with django_capture_on_commit_callbacks(execute=True):
        release_id = client.post(
            "/api/releases/merge-to-staging/",
            {"task_ids": [task.pk]},
            content_type="application/json",
        ).json()["id"]
    from deployments.drivers import DeployFailed
    from deployments.drivers.gitops import GitOpsDriver

    def refuse(self, place, rendered):
        raise DeployFailed("ImagePullBackOff: registry.example/shop not found")

    monkeypatch.setattr(GitOpsDriver, "apply", refuse)
    release = deploy_for_real(release_id)
    assert release.status == "failed" and release.error
    assert Task.objects.get(pk=task.pk).state == "approved"
    line = TaskEvent.objects.get(task=task, kind="deploy.failed")
    assert "stay where they were" in line.message and "ImagePullBackOff" in line.message
    assert not TaskEvent.objects.filter(task=task, to_state="staging").exists()
