"""Branches, pull requests, merges, reconcile and connect, against the stand-in Gitea behind
Prism (every request and answer validated against Gitea's API description)."""

import pytest
import requests

from aiworker import errors
from projects import services
from projects.forges.gitea import NOT_CONFIGURED, GiteaUnavailable
from projects.models import Project
from tasks import jobs
from tasks.models import Task, TaskEvent, TaskFeedback
from tasks.services import forge
from tasks.states import TaskState
from tests import factories
from tests.projects.conftest import OWNER, REPO

pytestmark = pytest.mark.django_db


def _task(project, **fields):
    fields.setdefault("title", "Add a Checkout button!")
    fields.setdefault("state", TaskState.IN_PROGRESS)
    return factories.make_task(project=project, **fields)


def test_every_service_says_not_configured_without_gitea_url(repo_project, settings):
    settings.GITEA_URL = ""
    task = _task(repo_project)
    calls = [
        lambda: forge.task_create_branch(task_id=task.pk, actor=factories.system()),
        lambda: services.project_connect(project_id=repo_project.pk, actor=factories.system()),
        lambda: forge.task_reconcile_pull_request(
            task_id=factories.make_task(project=repo_project, pr_number=3).pk,
            actor=factories.system(),
        ),
    ]
    task.branch_name = "task/1-x"
    task.save()
    calls.append(lambda: forge.task_open_pull_request(task_id=task.pk, actor=factories.system()))
    for call in calls:
        with pytest.raises(errors.NotConfigured, match=NOT_CONFIGURED):
            call()
    assert not TaskEvent.objects.exists()


def test_create_branch_records_the_name_once(gitea, repo_project):
    task = _task(repo_project)
    expected = f"task/{task.pk}-add-a-checkout-button"

    first = forge.task_create_branch(task_id=task.pk, actor=factories.system())
    again = forge.task_create_branch(task_id=task.pk, actor=factories.system())

    assert first.branch_name == again.branch_name == expected
    assert expected in gitea.repos[(OWNER, REPO)].branches
    assert len(gitea.requests("POST", r"/branches$")) == 2  # the second answered 409: fine
    assert TaskEvent.objects.filter(task=task, kind="branch_created").count() == 1


def test_branch_slug_is_at_most_40_characters(repo_project):
    task = _task(repo_project, title="A very long title " * 10)
    name = forge.branch_name_for(task)
    assert name.startswith(f"task/{task.pk}-")
    assert len(name.removeprefix(f"task/{task.pk}-")) <= 40


def test_agent_may_not_branch_a_task_of_another_agent(gitea, repo_project):
    agent, _ = factories.make_agent()
    task = _task(repo_project)
    from aiworker.actors import Actor

    with pytest.raises(errors.PermissionDenied):
        forge.task_create_branch(task_id=task.pk, actor=Actor.of_agent(agent))
    assert gitea.requests("POST") == []
    assert Task.objects.get(pk=task.pk).branch_name == ""


def test_bad_base_is_refused_before_gitea(gitea, repo_project):
    task = _task(repo_project)
    with pytest.raises(errors.InvalidInput):
        forge.task_create_branch(task_id=task.pk, actor=factories.system(), base="../etc; rm")
    assert gitea.requests() == []


def test_open_pull_request_links_the_task_and_is_idempotent(gitea, repo_project, settings):
    settings.PUBLIC_BASE_URL = "https://aiworker.example"
    task = _task(repo_project, description="Customers asked for it.")
    forge.task_create_branch(task_id=task.pk, actor=factories.system())
    gitea.push(OWNER, REPO, Task.objects.get(pk=task.pk).branch_name)

    first = forge.task_open_pull_request(task_id=task.pk, actor=factories.system())
    again = forge.task_open_pull_request(task_id=task.pk, actor=factories.system())

    pulls = gitea.repos[(OWNER, REPO)].pulls
    assert len(pulls) == 1
    assert first.pr_number == again.pr_number == pulls[0]["number"]
    assert first.pr_url.endswith(f"/pulls/{pulls[0]['number']}")
    assert (
        f"https://aiworker.example/projects/{repo_project.slug}/tasks/{task.pk}/"
        in pulls[0]["body"]
    )
    assert "Customers asked for it." in pulls[0]["body"]
    assert pulls[0]["base"] == "main" and pulls[0]["head"] == first.branch_name
    assert TaskEvent.objects.filter(task=task, kind="pr_opened").count() == 1


def test_open_pull_request_needs_a_branch_first(gitea, repo_project):
    task = _task(repo_project)
    with pytest.raises(errors.Conflict, match="create_branch"):
        forge.task_open_pull_request(task_id=task.pk, actor=factories.system())
    assert gitea.requests() == []


def test_retry_after_a_gitea_timeout_does_not_open_a_second_pr(gitea, repo_project, settings):
    """The first POST reaches Gitea, which opens the PR but answers after the client gave up;
    the job's retry finds that PR instead of opening another."""
    task = _task(repo_project)
    forge.task_create_branch(task_id=task.pk, actor=factories.system())
    gitea.push(OWNER, REPO, Task.objects.get(pk=task.pk).branch_name)
    settings.GITEA_TIMEOUT = 1.0
    gitea.fail_next("POST", r"/pulls$", delay=2.5)

    with pytest.raises(GiteaUnavailable):
        forge.task_open_pull_request(task_id=task.pk, actor=factories.system())
    assert len(gitea.repos[(OWNER, REPO)].pulls) == 1  # Gitea did open it
    assert Task.objects.get(pk=task.pk).pr_number is None

    result = jobs.open_pull_request.delay(task_id=task.pk).get()

    assert len(gitea.repos[(OWNER, REPO)].pulls) == 1
    task.refresh_from_db()
    assert task.pr_number == 1 and result == task.pr_url
    assert len(gitea.requests("POST", r"/pulls$")) == 1


def test_job_retries_a_timeout_with_backoff_until_it_succeeds(gitea, repo_project, settings):
    task = _task(repo_project)
    settings.GITEA_TIMEOUT = 1.0
    gitea.fail_next("POST", r"/branches$", delay=2.0)

    name = jobs.create_branch.delay(task_id=task.pk).get()

    assert name == f"task/{task.pk}-add-a-checkout-button"
    assert Task.objects.get(pk=task.pk).branch_name == name
    assert jobs.create_branch.max_retries == 5 and jobs.create_branch.retry_backoff


def test_merge_conflict_is_a_conflict_with_giteas_message(gitea, repo_project):
    task = _task(repo_project)
    forge.task_create_branch(task_id=task.pk, actor=factories.system())
    gitea.push(OWNER, REPO, Task.objects.get(pk=task.pk).branch_name)
    task = forge.task_open_pull_request(task_id=task.pk, actor=factories.system())
    gitea.conflicts.add(task.pr_number)

    with pytest.raises(errors.Conflict, match="Merge conflict"):
        forge.task_merge_pull_request(task_id=task.pk, actor=factories.system())
    assert not TaskEvent.objects.filter(task=task, kind="pr_merged").exists()

    gitea.conflicts.clear()
    pr = forge.task_merge_pull_request(task_id=task.pk, actor=factories.system())
    again = forge.task_merge_pull_request(task_id=task.pk, actor=factories.system())
    assert pr.merged and again.merged
    assert TaskEvent.objects.filter(task=task, kind="pr_merged").count() == 1


def test_connect_project_registers_the_webhook_once(gitea, repo_project, settings):
    settings.PUBLIC_BASE_URL = "https://aiworker.example/"
    project = services.project_connect(project_id=repo_project.pk, actor=factories.system())
    hooks = gitea.repos[(OWNER, REPO)].hooks
    assert len(hooks) == 1
    assert hooks[0]["config"]["url"] == (
        f"https://aiworker.example/api/webhooks/gitea/?project={repo_project.slug}"
    )
    assert project.gitea_webhook_id == hooks[0]["id"]
    posted = gitea.requests("POST", r"/hooks$")[0][2]
    assert posted["config"]["secret"] == repo_project.webhook_secret
    before = Project.objects.filter(pk=project.pk).values().get()

    services.project_connect(project_id=repo_project.pk, actor=factories.system())

    assert len(gitea.repos[(OWNER, REPO)].hooks) == 1
    assert len(gitea.requests("POST", r"/hooks$")) == 1
    assert Project.objects.filter(pk=project.pk).values().get() == before


def test_connect_creates_a_missing_repository_for_an_org_or_the_user(gitea, db):
    org_project = factories.make_project(gitea_owner="neworg", gitea_repo="fresh")
    user_project = factories.make_project(gitea_owner="aiworker-bot", gitea_repo="mine")

    services.project_connect(project_id=org_project.pk, actor=factories.system())
    services.project_connect(project_id=user_project.pk, actor=factories.system())

    assert len(gitea.requests("POST", r"^/api/v1/orgs/neworg/repos$")) == 1
    assert len(gitea.requests("POST", r"^/api/v1/user/repos$")) == 1
    fresh = gitea.repos[("neworg", "fresh")]
    assert set(fresh.branches) == {"main", "staging", "production"}


def test_connect_needs_the_change_project_permission(gitea, repo_project):
    from aiworker.actors import Actor

    user = factories.make_user()
    with pytest.raises(errors.PermissionDenied):
        services.project_connect(project_id=repo_project.pk, actor=Actor.of_user(user))
    assert gitea.requests() == []
    assert Project.objects.get(pk=repo_project.pk).gitea_webhook_id is None


def test_reconcile_records_a_merge_and_review_feedback_once(gitea, repo_project):
    task = _task(repo_project, state=TaskState.READY_TO_TEST)
    forge.task_create_branch(task_id=task.pk, actor=factories.system())
    gitea.push(OWNER, REPO, Task.objects.get(pk=task.pk).branch_name)
    task = forge.task_open_pull_request(task_id=task.pk, actor=factories.system())
    repo = gitea.repos[(OWNER, REPO)]
    repo.comments[task.pr_number] = [
        {"id": 77, "body": "Please rename the button.", "user": {"id": 2, "login": "ana"}},
        {"id": 78, "body": "AiWorker: our own note", "user": {"id": 1, "login": "aiworker-bot"}},
    ]
    repo.reviews[task.pr_number] = [
        {"id": 5, "body": "Tests missing", "state": "REQUEST_CHANGES", "user": {"login": "bo"}}
    ]

    assert jobs.reconcile_pull_requests.delay().get() == 1
    assert jobs.reconcile_pull_requests.delay().get() == 1

    feedback = list(TaskFeedback.objects.filter(task=task).values_list("author", "body"))
    assert feedback == [
        ("ana", "Please rename the button."),
        ("bo", "[REQUEST_CHANGES] Tests missing"),
    ]
    repo.pulls[0].update(merged=True, state="closed", merge_commit_sha="f" * 40)
    outcome = forge.task_reconcile_pull_request(task_id=task.pk, actor=factories.system())
    again = forge.task_reconcile_pull_request(task_id=task.pk, actor=factories.system())
    assert outcome == again == "pr_merged"
    assert TaskEvent.objects.filter(task=task, kind="pr_merged").count() == 1


def test_prism_refuses_a_request_that_breaks_the_description(gitea, _gitea_servers):
    """The validator is live: a branch without its required name never reaches the stand-in."""
    _, prism = _gitea_servers
    response = requests.post(
        f"{prism.url}/api/v1/repos/{OWNER}/{REPO}/branches",
        json={"old_ref_name": "refs/heads/main"},
        headers={"Authorization": "token test-token"},
        timeout=10,
    )
    assert response.status_code == 422
    assert "new_branch_name" in response.text
    assert gitea.requests() == []
    assert len(prism.violations()) == 1  # and the fixture's check would have caught it
    prism.mark()  # that refusal was the point of this test
