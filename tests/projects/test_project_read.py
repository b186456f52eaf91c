"""`project_by_slug`, the project read of a claim that names its project, as SQL built once
(projects/selectors.py): the instance the ORM loads, or None."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from projects.models import Project
from projects.selectors import project_by_slug
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_project_read_loads_what_the_orm_loads():
    made = factories.make_project(slug="read-me")
    Project.objects.filter(pk=made.pk).update(wip_limits={"in_progress": 3})
    orm = Project.objects.filter(slug="read-me").first()
    with CaptureQueriesContext(connection) as queries:
        found = project_by_slug("read-me")
    assert len(queries.captured_queries) == 1
    assert found is not None and found._state.adding is False
    fields = Project._meta.concrete_fields
    assert {f.attname: getattr(found, f.attname) for f in fields} == {
        f.attname: getattr(orm, f.attname) for f in fields
    }
    assert found.wip_limit("in_progress") == 3


def test_an_unknown_slug_reads_as_none():
    assert project_by_slug("no-such-project") is None
