"""A real git client cloning and pushing over HTTP to a live server of the platform (daphne
in this process, tests/board/live_server.py), the agent's token as the credential."""

import pytest

from projects.forges import local_git
from projects.forges.local import LocalForge
from projects.models import PullRequest
from tasks.models import Task, TaskEvent
from tasks.states import TaskState
from tests import factories
from tests.board.live_server import start_daphne
from tests.forges.conftest import bearer, commit_file, git, refs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_url():
    url, _ = start_daphne()
    return url


def _held_task(project, agent, title="Greet"):
    task = factories.make_task(
        project=project, title=title, state=TaskState.IN_PROGRESS, assigned_agent=agent
    )
    task.branch_name = f"task/{task.pk}-{title.lower()}"
    task.save()
    return task


def test_an_agent_clones_and_pushes_its_task_branch_with_its_token(
    local_project, live_url, tmp_path, deploys
):
    agent, token = factories.make_agent()
    task = _held_task(local_project, agent)
    url = f"{live_url}/git/{local_project.slug}.git"
    checkout = tmp_path / "work"

    git(*bearer(token), "clone", "--quiet", url, str(checkout))
    git("checkout", "--quiet", "-b", task.branch_name, cwd=checkout)
    sha = commit_file(checkout, "hello.txt", "hello\n")
    pushed = git(*bearer(token), "push", "--quiet", "origin", task.branch_name, cwd=checkout)

    assert pushed.returncode == 0
    repo = LocalForge(local_project).path
    assert local_git.sha_of(repo, task.branch_name) == sha
    task.refresh_from_db()
    assert task.head_sha == sha
    event = TaskEvent.objects.get(task=task, kind="pushed")
    assert event.actor_agent == agent and sha[:10] in event.message
    assert deploys == [{"task_id": task.pk, "commit_sha": sha}]


def test_a_new_push_updates_the_open_pull_request(local_project, live_url, tmp_path, deploys):
    agent, token = factories.make_agent()
    task = _held_task(local_project, agent)
    url = f"{live_url}/git/{local_project.slug}.git"
    checkout = tmp_path / "work"
    git(*bearer(token), "clone", "--quiet", url, str(checkout))
    git("checkout", "--quiet", "-b", task.branch_name, cwd=checkout)
    commit_file(checkout, "a.txt", "a\n")
    git(*bearer(token), "push", "--quiet", "origin", task.branch_name, cwd=checkout)
    from tasks.services import forge

    forge.task_open_pull_request(task_id=task.pk, actor=factories.system())
    second = commit_file(checkout, "a.txt", "b\n")
    # HTTP Basic with the token as the password works as well as the bearer header.
    basic = url.replace("http://", f"http://agent:{token}@")
    git("push", "--quiet", basic, task.branch_name, cwd=checkout)

    assert PullRequest.objects.get().head_sha == second
    assert Task.objects.get(pk=task.pk).head_sha == second
    assert [c["commit_sha"] for c in deploys][-1] == second


def test_no_token_or_a_wrong_one_is_refused_and_changes_nothing(local_project, live_url, tmp_path):
    url = f"{live_url}/git/{local_project.slug}.git"
    before = refs(LocalForge(local_project).path)

    for args in ([], bearer("aiw_not-a-token")):
        done = git(*args, "clone", "--quiet", url, str(tmp_path / "x"), check=False)
        assert done.returncode != 0
        # 401 with a Basic challenge: git asks for credentials, and has none to give.
        assert "could not read Username" in done.stderr or "Authentication failed" in done.stderr

    import requests

    answer = requests.get(f"{url}/info/refs?service=git-receive-pack", timeout=10)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert refs(LocalForge(local_project).path) == before
    assert not TaskEvent.objects.exists()


def test_a_push_to_another_tasks_branch_is_refused_and_changes_nothing(
    local_project, live_url, tmp_path, deploys
):
    agent, token = factories.make_agent()
    other, _ = factories.make_agent()
    mine = _held_task(local_project, agent, "Mine")
    theirs = _held_task(local_project, other, "Theirs")
    url = f"{live_url}/git/{local_project.slug}.git"
    checkout = tmp_path / "work"
    git(*bearer(token), "clone", "--quiet", url, str(checkout))
    commit_file(checkout, "evil.txt", "x\n")
    LocalForge(local_project).create_branch(name=mine.branch_name, base="main")
    repo = LocalForge(local_project).path
    before = refs(repo)

    pushes = [
        [f"HEAD:refs/heads/{theirs.branch_name}"],
        ["HEAD:refs/heads/main"],
        # One refused ref refuses the whole push: its own branch does not move either.
        [f"HEAD:refs/heads/{mine.branch_name}", f"HEAD:refs/heads/{theirs.branch_name}"],
        # Deleting even its own branch is refused.
        [f":refs/heads/{mine.branch_name}"],
    ]
    for refspecs in pushes:
        done = git(*bearer(token), "push", "origin", *refspecs, cwd=checkout, check=False)
        assert done.returncode != 0
        assert "403" in done.stderr, done.stderr

    assert refs(repo) == before
    assert not TaskEvent.objects.filter(kind="pushed").exists()
    assert Task.objects.get(pk=theirs.pk).head_sha == ""
    assert deploys == []


def test_the_pre_receive_hook_refuses_what_the_view_was_not_asked_about(local_project, tmp_path):
    """git itself enforces the list: a receive-pack told only of task/1-x refuses main."""
    import os
    import subprocess

    repo = LocalForge(local_project).path
    checkout = tmp_path / "direct"
    git("clone", "--quiet", str(repo), str(checkout))
    commit_file(checkout, "x.txt", "x\n")
    before = refs(repo)
    done = subprocess.run(
        ["git", "push", "origin", "HEAD:refs/heads/main"],
        cwd=checkout,
        capture_output=True,
        text=True,
        env={**os.environ, "AIWORKER_ALLOWED_REFS": "refs/heads/task/1-x"},
    )
    assert done.returncode != 0
    assert "is not the branch of a task you hold" in done.stderr
    assert refs(repo) == before


def test_an_agent_of_another_project_or_a_gitea_project_is_refused(local_project, live_url):
    import requests

    elsewhere = factories.make_project(forge="local")
    _, token = factories.make_agent(project=elsewhere)
    answer = requests.get(
        f"{live_url}/git/{local_project.slug}.git/info/refs?service=git-upload-pack",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 403
    gitea_project = factories.make_project()
    answer = requests.get(
        f"{live_url}/git/{gitea_project.slug}.git/info/refs?service=git-upload-pack",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 404
    dumb = requests.get(f"{live_url}/git/{local_project.slug}.git/HEAD", timeout=10)
    assert dumb.status_code == 404
