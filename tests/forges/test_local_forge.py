"""The local forge on real bare repositories: branches, pull requests, merges, promotion."""

import pytest

from aiworker import errors
from projects import forges
from projects.forges import local_git
from projects.forges.local import LocalForge
from projects.models import PullRequest, PullRequestComment
from tasks.models import Task, TaskEvent
from tasks.services import forge as task_forge
from tasks.states import TaskState
from tests import factories
from tests.forges.conftest import git, refs, task_with_pushed_branch

pytestmark = pytest.mark.django_db


def test_the_platform_creates_the_repository_with_the_flow_branches(local_project, settings):
    forge = forges.get_forge(local_project)
    assert isinstance(forge, LocalForge)
    repo = forge.path
    assert repo == settings.VAR_DIR / "repos" / f"{local_project.slug}.git"
    shas = {b: local_git.sha_of(repo, b) for b in ("main", "staging", "production")}
    assert len(set(shas.values())) == 1 and all(shas.values())
    assert (repo / "hooks" / "pre-receive").stat().st_mode & 0o111
    before = refs(repo)
    forge.ensure_repository()  # again: nothing changes
    assert refs(repo) == before
    assert forge.clone_url() == f"http://127.0.0.1:8000/git/{local_project.slug}.git"


def test_an_existing_path_must_be_a_bare_repository(local_project, tmp_path):
    local_project.local_repo_path = str(tmp_path / "nothing-here")
    with pytest.raises(errors.InvalidInput, match="not a bare git repository"):
        LocalForge(local_project).ensure_repository()
    assert not (tmp_path / "nothing-here").exists()


def test_services_open_one_pull_request_for_a_task_branch(local_project, seeded):
    repo, checkout = seeded
    task = task_with_pushed_branch(local_project, checkout, title="Greet", files={"a.txt": "a\n"})

    first = task_forge.task_open_pull_request(task_id=task.pk, actor=factories.system())
    again = task_forge.task_open_pull_request(task_id=task.pk, actor=factories.system())

    pr = PullRequest.objects.get()
    assert (pr.number, pr.head_ref, pr.base_ref, pr.state) == (1, task.branch_name, "main", "open")
    assert pr.head_sha == local_git.sha_of(repo, task.branch_name)
    assert first.pr_number == again.pr_number == 1
    assert first.pr_url.endswith(f"/projects/{local_project.slug}/pulls/1/")
    assert TaskEvent.objects.filter(task=task, kind="pr_opened").count() == 1


def test_a_branch_without_new_commits_opens_no_pull_request(local_project, seeded):
    task = factories.make_task(project=local_project, state=TaskState.IN_PROGRESS)
    task = task_forge.task_create_branch(task_id=task.pk, actor=factories.system())
    with pytest.raises(errors.InvalidInput, match="nothing to review"):
        task_forge.task_open_pull_request(task_id=task.pk, actor=factories.system())
    assert not PullRequest.objects.exists()


def test_merge_is_a_real_git_merge_and_a_conflict_changes_nothing(local_project, seeded):
    repo, checkout = seeded
    one = task_with_pushed_branch(
        local_project, checkout, title="One", files={"app.py": "print('one')\n"}
    )
    two = task_with_pushed_branch(
        local_project, checkout, title="Two", files={"app.py": "print('two')\n"}
    )
    for task in (one, two):
        task_forge.task_open_pull_request(task_id=task.pk, actor=factories.system())

    merged = task_forge.task_merge_pull_request(task_id=one.pk, actor=factories.system())

    main = local_git.sha_of(repo, "main")
    assert merged.merged and merged.merge_commit_sha == main
    parents = git("--git-dir", str(repo), "rev-list", "--parents", "-n1", main).stdout.split()
    assert parents[2] == local_git.sha_of(repo, one.branch_name)  # a merge commit, --no-ff
    before = refs(repo)
    with pytest.raises(errors.Conflict, match=r"Merge conflict: .* \(conflicting: app.py\)"):
        task_forge.task_merge_pull_request(task_id=two.pk, actor=factories.system())
    assert refs(repo) == before
    assert PullRequest.objects.get(number=2).state == "open"
    assert git("--git-dir", str(repo), "worktree", "list").stdout.count("\n") == 1  # bare only
    assert not TaskEvent.objects.filter(task=two, kind="pr_merged").exists()
    # Merged already is fine: a retried merge changes nothing.
    again = task_forge.task_merge_pull_request(task_id=one.pk, actor=factories.system())
    assert again.merge_commit_sha == main == local_git.sha_of(repo, "main")


def test_staging_merges_main_and_promotion_fast_forwards_production(local_project, seeded):
    repo, checkout = seeded
    task = task_with_pushed_branch(local_project, checkout, title="T", files={"b.txt": "b\n"})
    task_forge.task_open_pull_request(task_id=task.pk, actor=factories.system())
    task_forge.task_merge_pull_request(task_id=task.pk, actor=factories.system())
    forge = forges.get_forge(local_project)

    staging = forge.bring_up_to_date(head="main", base="staging", title="Release to staging")
    production = forge.bring_up_to_date(head="staging", base="production", title="Promote")

    assert staging == local_git.sha_of(repo, "staging")
    assert local_git.is_ancestor(repo, local_git.sha_of(repo, "main"), "staging")
    assert production == staging == local_git.sha_of(repo, "production")  # a fast-forward
    assert forge.bring_up_to_date(head="staging", base="production", title="again") == production


def test_comments_and_closing_are_kept_on_the_pull_request(local_project, seeded):
    _, checkout = seeded
    task = task_with_pushed_branch(local_project, checkout, title="C", files={"c.txt": "c\n"})
    task = task_forge.task_open_pull_request(task_id=task.pk, actor=factories.system())
    task_forge.comment_on_pull_request(task=task, body="not merged to staging: conflict")
    comment = PullRequestComment.objects.get()
    assert (comment.kind, comment.author) == ("platform", "AiWorker")
    assert comment.body == "AiWorker: not merged to staging: conflict"
    forge = LocalForge(local_project)
    closed = forge.close_pull_request(number=1)
    assert (closed.state, closed.merged) == ("closed", False)
    with pytest.raises(errors.Conflict, match="closed without a merge"):
        task_forge.task_merge_pull_request(task_id=task.pk, actor=factories.system())
    assert Task.objects.get(pk=task.pk).pr_number == 1
