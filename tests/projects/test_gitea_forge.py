"""The forge interface on Gitea (the stand-in behind Prism): what the services and the release
flow call, beyond what tests/projects/test_gitea_services.py covers through the services."""

import pytest

from aiworker import errors
from projects import forges
from projects.forges.gitea import GiteaForge
from tests import factories
from tests.projects.conftest import OWNER, REPO

pytestmark = pytest.mark.django_db


def test_the_registry_gives_each_project_its_own_forge(repo_project):
    assert isinstance(forges.get_forge(repo_project), GiteaForge)
    repo_project.forge = "svn"
    with pytest.raises(errors.NotConfigured, match="use one of gitea"):
        forges.get_forge(repo_project)


def test_clone_url_names_the_repository_on_gitea(repo_project, settings):
    settings.GITEA_URL = "http://gitea.example/"
    assert forges.get_forge(repo_project).clone_url() == f"http://gitea.example/{OWNER}/{REPO}.git"
    settings.GITEA_URL = ""
    assert forges.get_forge(repo_project).clone_url() is None


def test_bring_up_to_date_merges_head_into_base_and_returns_the_new_sha(gitea, repo_project):
    forge = forges.get_forge(repo_project)
    main_sha = gitea.push(OWNER, REPO, "main")

    sha = forge.bring_up_to_date(head="main", base="staging", title="Release")

    repo = gitea.repos[(OWNER, REPO)]
    assert sha == repo.branches["staging"] != main_sha
    merged = [p for p in repo.pulls if p["head"] == "main" and p["base"] == "staging"]
    assert len(merged) == 1 and merged[0]["merged"]


def test_open_pull_request_twice_is_one_pull_request(gitea, repo_project):
    forge = forges.get_forge(repo_project)
    assert forge.create_branch(name="task/1-x", base="main") is True
    assert forge.create_branch(name="task/1-x", base="main") is False
    gitea.push(OWNER, REPO, "task/1-x")

    first, opened = forge.open_pull_request(head="task/1-x", base="main", title="T", body="B")
    second, again = forge.open_pull_request(head="task/1-x", base="main", title="T", body="B")

    assert (opened, again) == (True, False)
    assert first.number == second.number
    assert forge.find_pull_request(head="task/1-x", base="main") == second
    merged = forge.merge_pull_request(number=first.number, message="m")
    assert merged.merged and forge.merge_pull_request(number=first.number, message="m").merged


def test_ensure_repository_creates_the_flow_branches(gitea, db):
    project = factories.make_project(gitea_owner=OWNER, gitea_repo="fresh")
    forges.get_forge(project).ensure_repository()
    forges.get_forge(project).ensure_repository()
    branches = gitea.repos[(OWNER, "fresh")].branches
    assert {"main", "staging", "production"} <= set(branches)
