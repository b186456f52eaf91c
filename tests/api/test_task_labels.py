"""Task labels through the REST API and the board's task form: cleaned, filtered, refused."""

import pytest

from tasks.models import Task
from tests.api.helpers import db_snapshot
from tests.factories import make_task


def test_labels_are_cleaned_on_create_and_replaced_on_edit(api, project):
    response = api.post(
        "/api/tasks/",
        {"project": project.slug, "title": "Labelled", "labels": ["Bug", "  UI  ", "bug", ""]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["labels"] == ["bug", "ui"]
    task = Task.objects.get(pk=response.json()["id"])
    assert task.labels == ",bug,ui,"

    response = api.patch(f"/api/tasks/{task.pk}/", {"labels": ["needs design"]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["labels"] == ["needs design"]
    response = api.patch(f"/api/tasks/{task.pk}/", {"labels": []}, format="json")
    assert response.json()["labels"] == []


def test_the_list_filters_by_label(api, project):
    bug = make_task(project=project, title="Bug", labels=",bug,ui,")
    make_task(project=project, title="Debugger", labels=",debugger,")  # not a substring match
    make_task(project=project, title="None")

    response = api.get(f"/api/tasks/?project={project.slug}&label=Bug")
    assert response.status_code == 200, response.json()
    assert [row["id"] for row in response.json()["results"]] == [bug.pk]


@pytest.mark.parametrize(
    "labels",
    [
        "bug",  # not a list
        ["a,b"],  # the delimiter
        ["-dash-first"],
        ["x" * 31],
        [f"l{i}" for i in range(11)],
        [3],
    ],
)
def test_bad_labels_are_refused_and_change_nothing(api, project, labels):
    task = make_task(project=project, title="Kept", labels=",kept,")
    before = db_snapshot()
    created = api.post(
        "/api/tasks/", {"project": project.slug, "title": "New", "labels": labels}, format="json"
    )
    edited = api.patch(f"/api/tasks/{task.pk}/", {"labels": labels}, format="json")

    for response in (created, edited):
        assert response.status_code == 400, response.json()
        assert "labels" in str(response.json())
    assert db_snapshot() == before


def test_a_bad_label_filter_is_a_400(api, project):
    response = api.get(f"/api/tasks/?project={project.slug}&label=a,b")
    assert response.status_code == 400


def test_the_task_form_takes_comma_separated_labels(client, project, user):
    client.force_login(user)
    response = client.post(
        f"/projects/{project.slug}/tasks/new/",
        {"title": "From the form", "description": "", "priority": "1", "labels": "Bug, ui"},
    )
    assert response.status_code == 302, response.content.decode()[:500]
    task = Task.objects.get(title="From the form")
    assert task.label_list == ["bug", "ui"]

    response = client.post(
        f"/projects/{project.slug}/tasks/new/",
        {"title": "Refused", "description": "", "priority": "1", "labels": "ok, no;way"},
    )
    assert response.status_code == 400
    assert "Not a label" in response.content.decode()
    assert not Task.objects.filter(title="Refused").exists()
