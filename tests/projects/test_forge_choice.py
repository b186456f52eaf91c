"""Each project names its forge and its deploy driver; without GITEA_URL both default to local."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from projects.models import Project

pytestmark = pytest.mark.django_db


def test_without_gitea_url_a_new_project_is_local_through_and_through(settings):
    settings.GITEA_URL = ""
    project = Project.objects.create(name="Solo", slug="solo")
    assert (project.forge, project.deploy_driver) == ("local", "local")
    assert project.run_command == "python -m http.server {port}"
    assert project.health_path == "/"
    assert project.local_repo_path == ""


def test_with_gitea_url_a_new_project_uses_gitea_and_the_deploy_setting(settings):
    settings.GITEA_URL = "http://gitea.invalid"
    project = Project.objects.create(name="Team", slug="team")
    assert (project.forge, project.deploy_driver) == ("gitea", "")


def test_health_path_must_be_a_path():
    project = Project(name="P", slug="p", health_path="health")
    with pytest.raises(ValidationError) as caught:
        project.full_clean()
    assert "health_path" in caught.value.message_dict


def test_admin_edits_the_forge_and_the_local_settings(admin_client):
    page = admin_client.get("/admin/projects/project/add/").content.decode()
    for name in ("forge", "deploy_driver", "local_repo_path", "run_command", "health_path"):
        assert f'name="{name}"' in page


def test_models_and_migrations_agree():
    call_command("makemigrations", "projects", "--check", "--dry-run", verbosity=0)
