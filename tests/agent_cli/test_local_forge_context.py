"""What get_next_task tells the runner about where the code lives: the project's forge's clone
URL, so a project on the platform's own (local) forge is cloned from `/git/<slug>.git`."""

import pytest

from mcpbridge import context
from projects.forges.local import LocalForge
from tests import factories


@pytest.mark.django_db
def test_a_local_forge_project_is_cloned_from_the_platform(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.GITEA_URL = ""
    settings.PUBLIC_BASE_URL = "http://platform.test:8000/"
    project = factories.make_project(forge="local", slug="site")
    LocalForge(project).ensure_repository()
    task = factories.make_task(project=project)

    assert context.task_context(task)["repo_clone_url"] == "http://platform.test:8000/git/site.git"


@pytest.mark.django_db
def test_a_gitea_project_is_cloned_from_gitea_and_without_gitea_from_nowhere(settings):
    project = factories.make_project(gitea_owner="acme", gitea_repo="shop")
    task = factories.make_task(project=project)
    settings.GITEA_URL = "http://gitea.test/"
    assert context.task_context(task)["repo_clone_url"] == "http://gitea.test/acme/shop.git"
    settings.GITEA_URL = ""
    assert context.task_context(task)["repo_clone_url"] is None
