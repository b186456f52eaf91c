"""A user's roles and global permissions, read in one statement built once (projects/roles.py),
are what the memberships and Django's ModelBackend say."""

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from projects import roles
from projects.models import Membership
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_users_roles_and_global_permissions_come_from_one_query(settings):
    settings.PROJECT_DEFAULT_ROLE = ""  # tests/conftest.py gives every user a member's rights
    project, other = factories.make_project(), factories.make_project()
    user = factories.make_user(perms=("tasks.approve_task",))
    group = Group.objects.create(name="releasers")
    group.permissions.add(Permission.objects.get(codename="promote_release"))
    user.groups.add(group)
    Membership.objects.create(user=user, project=project, role=Membership.Role.REVIEWER)
    Membership.objects.create(user=user, project=other, role=Membership.Role.VIEWER)
    with CaptureQueriesContext(connection) as queries:
        grants = roles._grants_of(user)
        assert roles._grants_of(user) is grants  # cached on the user object
    assert len(queries.captured_queries) == 1
    assert grants.roles == {project.pk: "reviewer", other.pk: "viewer"}
    assert grants.perms == ModelBackend().get_all_permissions(user)
    assert grants.perms == {"tasks.approve_task", "deployments.promote_release"}
    assert user.has_perm(roles.PROMOTE, other) and not user.has_perm(roles.EDIT_TASK, other)
    nobody = factories.make_user()
    assert roles._grants_of(nobody).roles == {} and roles._grants_of(nobody).perms == set()
