"""Slugs that are not DNS labels (`tail_`, `-lead`, 60 characters) never yield an invalid or
colliding Kubernetes name; the REST API refuses them on input."""

import re

import pytest
from rest_framework.test import APIClient

from aiworker.dns_names import dns_label
from deployments.manifests import release_host, release_namespace
from projects.models import Project
from tests import factories

LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@pytest.mark.parametrize("slug", ["tail_", "-lead", "a" * 60, "Caps", "x--y", "a.b", "_"])
def test_every_release_name_is_a_dns_label(slug):
    for env in ("staging", "production"):
        assert LABEL.match(release_namespace(slug, env)), slug
        assert LABEL.match(release_host(slug, env).split(".")[0]), slug


def test_shortened_or_changed_names_do_not_collide():
    assert release_namespace("a" * 60, "production") != release_namespace("a" * 59, "production")
    assert dns_label("tail_") != dns_label("tail")
    assert dns_label("good-slug", "staging") == "good-slug-staging"


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["tail_", "-lead", "lead-", "Caps", "a" * 61])
def test_the_api_refuses_a_slug_that_is_not_a_dns_label(slug):
    client = APIClient()
    client.force_login(factories.make_user(perms=("projects.add_project",)))
    response = client.post("/api/projects/", {"name": "X", "slug": slug}, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()["errors"]
    assert not Project.objects.exists()
