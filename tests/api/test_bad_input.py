"""SPEC §13 on the REST API: bad input answers 4xx with a message naming the field, writes
nothing, and is never a 500. Every case runs as a superuser, so only the input is at fault."""

import json

import pytest
from rest_framework.test import APIClient

from tasks.models import TaskQuestion
from tasks.states import TaskState
from tests.api.helpers import db_snapshot
from tests.factories import make_agent, make_project, make_task

BIG = "x" * 100_000
MISSING = 999_999


@pytest.fixture
def world(db):
    project = make_project(slug="shop")
    agent, _ = make_agent()
    task = make_task(project=project, state=TaskState.NEEDS_INPUT, assigned_agent=agent)
    other = make_task(project=project)
    question = TaskQuestion.objects.create(task=task, agent=agent, question="Which DB?")
    return {"project": project, "task": task, "other": other, "q": question, "agent": agent}


def url(template: str, w: dict, **override: int) -> str:
    ids = {
        "project": w["project"].pk,
        "task": w["task"].pk,
        "q": w["q"].pk,
        "agent": w["agent"].pk,
        **override,
    }
    return template.format(**ids)


# (method, path, a valid body) for every write; the bodies below break one thing each.
WRITES = {
    "project-create": ("post", "/api/projects/", {"name": "N", "slug": "n"}),
    "project-patch": ("patch", "/api/projects/{project}/", {"name": "N"}),
    "project-put": ("put", "/api/projects/{project}/", {"name": "N", "slug": "n"}),
    "task-create": ("post", "/api/tasks/", {"project": "shop", "title": "T"}),
    "task-patch": ("patch", "/api/tasks/{task}/", {"title": "T"}),
    "transition": ("post", "/api/tasks/{task}/transition/", {"to_state": "backlog"}),
    "answer": ("post", "/api/tasks/{task}/questions/{q}/answer/", {"answer": "A"}),
    "approve": ("post", "/api/tasks/{task}/approve/", {"note": ""}),
    "request-changes": ("post", "/api/tasks/{task}/request-changes/", {"feedback": "F"}),
    "dependencies": ("put", "/api/tasks/{task}/dependencies/", {"depends_on": []}),
    "agent-create": ("post", "/api/agents/", {"name": "a-new"}),
    "agent-revoke": ("post", "/api/agents/{agent}/revoke/", {}),
}
READS = {
    "project-list": "/api/projects/",
    "project-detail": "/api/projects/{project}/",
    "task-list": "/api/tasks/",
    "task-detail": "/api/tasks/{task}/",
    "questions": "/api/tasks/{task}/questions/",
    "events": "/api/tasks/{task}/events/",
    "agent-list": "/api/agents/",
    "agent-detail": "/api/agents/{agent}/",
}
# Bodies with a wrong type or a missing/oversize field, and the field the answer must name.
BAD_BODIES = {
    "project-create": [
        ({"name": "N"}, "slug"),
        ({"name": "N", "slug": "has space"}, "slug"),
        ({"name": BIG, "slug": "n"}, "name"),
        ({"name": "N", "slug": "n", "preview_port": "eighty"}, "preview_port"),
        ({"name": "N", "slug": "n", "preview_port": 70000}, "preview_port"),
        ({"name": "N", "slug": "n", "wip_limits": {"doing": 1}}, "wip_limits"),
        ({"name": "N", "slug": "n", "wip_limits": {"in_progress": -1}}, "wip_limits"),
        ({"name": "N", "slug": "n", "preview_env": {"1BAD": "x"}}, "preview_env"),
        ({"name": "N", "slug": "n", "preview_env": ["A=1"]}, "preview_env"),
        ({"name": "N", "slug": "shop"}, "slug"),
        ({"name": "N", "slug": "n", "webhook_secret": "mine"}, "webhook_secret"),
    ],
    "project-patch": [
        ({"name": BIG}, "name"),
        ({"name": 5.5, "max_concurrent_agents": "many"}, "max_concurrent_agents"),
        ({"default_branch": "a b"}, "default_branch"),
    ],
    "project-put": [
        ({"name": "only name"}, "slug"),
        ({"name": "N", "slug": "n", "image_repository": 0}, "image_repository"),
    ],
    "task-create": [
        ({"project": "shop"}, "title"),
        ({"title": "T"}, "project"),
        ({"project": "shop", "title": BIG}, "title"),
        ({"project": "shop", "title": "   "}, "title"),
        ({"project": "shop", "title": ["T"]}, "title"),
        ({"project": "shop", "title": 5}, "title"),  # a number is not saved as its digits
        ({"project": "shop", "title": "T", "spec": {"goals": 0}}, "spec"),
        ({"project": True, "title": "T"}, "project"),
        ({"project": "shop", "title": "T", "description": BIG}, "description"),
        ({"project": "shop", "title": "T", "priority": "highest"}, "priority"),
        ({"project": "shop", "title": "T", "priority": 9}, "priority"),
        ({"project": "nope", "title": "T"}, "project"),
        ({"project": MISSING, "title": "T"}, "project"),
        ({"project": "shop", "title": "T", "parent": MISSING}, "parent"),
        ({"project": "shop", "title": "T", "parent": "first"}, "parent"),
        ({"project": "shop", "title": "T", "depends_on": [MISSING]}, "depends_on"),
        ({"project": "shop", "title": "T", "depends_on": "1,2"}, "depends_on"),
        ({"project": "shop", "title": "T", "spec": {"goals": BIG}}, "spec"),
        ({"project": "shop", "title": "T", "spec": {"complexity": "huge"}}, "spec"),
        ({"project": "shop", "title": "T", "spec": {"colour": "red"}}, "spec"),
        ({"project": "shop", "title": "T", "state": "approved"}, "state"),
    ],
    "task-patch": [
        ({"title": BIG}, "title"),
        ({"title": ""}, "title"),
        ({"priority": [1]}, "priority"),
        ({"state": "approved"}, "state"),
        ({"assigned_agent": 1}, "assigned_agent"),
    ],
    "transition": [
        ({}, "to_state"),
        ({"to_state": "done"}, "to_state"),
        ({"to_state": 3}, "to_state"),
        ({"to_state": "backlog", "note": BIG}, "note"),
        ({"to_state": "backlog", "position": -1}, "position"),
        ({"to_state": "backlog", "position": "top"}, "position"),
    ],
    "answer": [({}, "answer"), ({"answer": ""}, "answer"), ({"answer": BIG}, "answer")],
    "approve": [({"note": BIG}, "note"), ({"note": {"a": 1}}, "note")],
    "request-changes": [({}, "feedback"), ({"feedback": BIG}, "feedback")],
    "dependencies": [
        ({}, "depends_on"),
        ({"depends_on": "1"}, "depends_on"),
        ({"depends_on": ["x"]}, "depends_on"),
        ({"depends_on": [MISSING]}, "depends_on"),
    ],
    "agent-create": [
        ({}, "name"),
        ({"name": BIG}, "name"),
        ({"name": "a", "kind": "gpt"}, "kind"),
        ({"name": "a", "project": "nope"}, "project"),
        ({"name": "a", "capabilities": "all"}, "capabilities"),
        ({"name": "a", "can_plan": "perhaps"}, "can_plan"),
    ],
}
BAD_CASES = [(name, body, field) for name, cases in BAD_BODIES.items() for body, field in cases]


@pytest.fixture
def superuser_api(admin_api) -> APIClient:
    return admin_api


def send(client: APIClient, method: str, path: str, body, **kwargs):
    return getattr(client, method)(path, body, format="json", **kwargs)


@pytest.mark.parametrize(("name", "body", "field"), BAD_CASES)
def test_bad_body_names_the_field_and_changes_nothing(superuser_api, world, name, body, field):
    method, template, _ = WRITES[name]
    before = db_snapshot()
    response = send(superuser_api, method, url(template, world), body)
    assert response.status_code == 400, response.content[:500]
    data = response.json()
    assert data["code"] == "invalid"
    assert field in data["errors"], data
    assert data["detail"]
    assert db_snapshot() == before


@pytest.mark.parametrize("name", [n for n, w in WRITES.items() if n != "agent-revoke"])
@pytest.mark.parametrize("raw", ["{not json", '{"title": "T",}', "\x00\xff"])
def test_malformed_json(superuser_api, world, name, raw):
    method, template, _ = WRITES[name]
    before = db_snapshot()
    response = getattr(superuser_api, method)(
        url(template, world), data=raw, content_type="application/json"
    )
    assert response.status_code == 400, response.content[:500]
    assert "JSON parse error" in response.json()["detail"]
    assert response.json()["code"] == "parse_error"
    assert db_snapshot() == before


@pytest.mark.parametrize("name", [n for n, w in WRITES.items() if n != "agent-revoke"])
@pytest.mark.parametrize("payload", [[1, 2], "text", 7, None])
def test_body_that_is_not_an_object(superuser_api, world, name, payload):
    method, template, _ = WRITES[name]
    before = db_snapshot()
    response = getattr(superuser_api, method)(
        url(template, world), data=json.dumps(payload), content_type="application/json"
    )
    assert 400 <= response.status_code < 500, response.content[:500]
    assert response.status_code == 400
    assert response.json()["errors"]
    assert db_snapshot() == before


def test_wrong_content_type_is_refused(superuser_api, world):
    """A JSON API: text, form and multipart bodies get a 415 in the error shape."""
    before = db_snapshot()
    body = {"project": "shop", "title": "T"}
    for response in (
        superuser_api.post("/api/tasks/", data="title=T", content_type="text/plain"),
        superuser_api.post(
            "/api/tasks/", data="project=shop&title=T",
            content_type="application/x-www-form-urlencoded",
        ),
        superuser_api.post("/api/tasks/", body, format="multipart"),
    ):  # fmt: skip
        assert response.status_code == 415
        assert response.json()["code"] == "unsupported_media_type"
    assert db_snapshot() == before


def test_unknown_api_address_answers_json(superuser_api, world):
    response = superuser_api.get("/api/tasks/not-a-number/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert superuser_api.get("/no-such-page/")["Content-Type"].startswith("text/html")


def test_item_errors_of_a_list_field_are_flat_messages(superuser_api, world):
    response = send(
        superuser_api, "post", "/api/tasks/", {"project": world["project"].slug, "title": "T",
                                               "depends_on": ["x", 1]},
    )  # fmt: skip
    assert response.status_code == 400
    messages = response.json()["errors"]["depends_on"]
    assert all(isinstance(m, str) for m in messages) and messages[0].startswith("item 0: ")


@pytest.mark.parametrize("name", [n for n, w in WRITES.items() if "{" in w[1]])
@pytest.mark.parametrize("missing", [MISSING, 10**20])
def test_unknown_ids_in_the_path(superuser_api, world, name, missing):
    method, template, body = WRITES[name]
    before = db_snapshot()
    for key in ("project", "task", "q", "agent"):
        if "{" + key + "}" not in template:
            continue
        response = send(superuser_api, method, url(template, world, **{key: missing}), body)
        assert response.status_code == 404, (key, response.content[:500])
        assert response.json()["code"] == "not_found"
        assert (
            str(missing) in response.json()["detail"]
            or "question" in response.json()["detail"].lower()
        )
    assert db_snapshot() == before


@pytest.mark.parametrize("name", [n for n, path in READS.items() if "{" in path])
def test_unknown_ids_on_reads(superuser_api, world, name):
    template = READS[name]
    for missing in (MISSING, 10**20):
        key = next(k for k in ("project", "task", "agent") if "{" + k + "}" in template)
        response = superuser_api.get(url(template, world, **{key: missing}))
        assert response.status_code == 404, response.content[:500]


def test_question_of_another_task_is_not_found(superuser_api, world):
    before = db_snapshot()
    path = f"/api/tasks/{world['other'].pk}/questions/{world['q'].pk}/answer/"
    response = send(superuser_api, "post", path, {"answer": "A"})
    assert response.status_code == 404
    assert db_snapshot() == before


@pytest.mark.parametrize("name", list(WRITES))
def test_unauthenticated_writes_are_refused(anon, world, name):
    method, template, body = WRITES[name]
    before = db_snapshot()
    response = send(anon, method, url(template, world), body)
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"
    assert db_snapshot() == before


@pytest.mark.parametrize("name", list(READS))
def test_unauthenticated_reads_are_refused(anon, world, name):
    response = anon.get(url(READS[name], world))
    assert response.status_code in (401, 403)
    assert "credentials" in response.json()["detail"]


def test_bad_token_is_refused(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    before = db_snapshot()
    response = send(client, "post", "/api/tasks/", {"project": "shop", "title": "T"})
    # 403 rather than 401: session authentication comes first and sends no WWW-Authenticate.
    assert response.status_code in (401, 403)
    assert response.json()["detail"] == "Invalid token."
    assert db_snapshot() == before


@pytest.mark.parametrize(
    "query, field",
    [
        ("state=done", "state"),
        ("agent=abc", "agent"),
        ("parent=1.5", "parent"),
        ("project=nope", "project"),
        (f"project={MISSING}", "project"),
        ("priority=9", "priority"),
    ],
)
def test_bad_list_filters(superuser_api, world, query, field):
    response = superuser_api.get(f"/api/tasks/?{query}")
    assert response.status_code == 400, response.content[:500]
    assert field in response.json()["errors"]


@pytest.mark.parametrize("path", ["/api/projects/", "/api/tasks/", "/api/agents/"])
@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("offset=null", "offset"),
        ("offset=1.5", "offset"),
        ("offset=99999999999999999999", "offset"),
        ("search=a%00b", "non_field_errors"),  # DRF's SearchFilter refuses NUL characters
    ],
)
def test_bad_paging_and_search_are_refused_not_ignored(superuser_api, world, path, query, field):
    """DRF's pagination quietly answers the default page for a limit or offset it cannot read;
    here the client learns it did not get what it asked for, in the one error shape."""
    response = superuser_api.get(f"{path}?{query}")
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["errors"], body
    assert body["detail"]


def test_a_project_is_named_by_its_id_as_a_number_or_its_slug(superuser_api, world):
    for ref in (world["project"].pk, str(world["project"].pk), "shop"):
        response = send(superuser_api, "post", "/api/tasks/", {"project": ref, "title": "T"})
        assert response.status_code == 201, response.content[:500]


def test_dependency_cycle_is_refused(superuser_api, world):
    a, b = world["task"], world["other"]
    b.depends_on.add(a)
    before = db_snapshot()
    response = send(
        superuser_api, "put", f"/api/tasks/{a.pk}/dependencies/", {"depends_on": [b.pk]}
    )
    assert response.status_code == 400
    assert "cycle" in response.json()["errors"]["depends_on"][0].lower()
    assert db_snapshot() == before


def test_self_dependency_is_refused(superuser_api, world):
    a = world["task"]
    before = db_snapshot()
    response = send(
        superuser_api, "put", f"/api/tasks/{a.pk}/dependencies/", {"depends_on": [a.pk]}
    )
    assert response.status_code == 400
    assert db_snapshot() == before


def test_dependency_on_another_projects_task_is_refused(superuser_api, world):
    foreign = make_task(project=make_project())
    before = db_snapshot()
    path = f"/api/tasks/{world['task'].pk}/dependencies/"
    response = send(superuser_api, "put", path, {"depends_on": [foreign.pk]})
    assert response.status_code == 400
    assert db_snapshot() == before


@pytest.mark.parametrize(
    "name, expected",
    [("approve", 409), ("request-changes", 409), ("answer", 200)],
)
def test_actions_in_the_wrong_state(superuser_api, world, name, expected):
    """The world's task is needs_input: approving or requesting changes is a refused move."""
    method, template, body = WRITES[name]
    before = db_snapshot()
    response = send(superuser_api, method, url(template, world), body)
    assert response.status_code == expected, response.content[:500]
    if expected == 409:
        assert db_snapshot() == before


def test_answering_twice_is_a_conflict(superuser_api, world):
    path = url(WRITES["answer"][1], world)
    assert send(superuser_api, "post", path, {"answer": "A"}).status_code == 200
    before = db_snapshot()
    response = send(superuser_api, "post", path, {"answer": "B"})
    assert response.status_code == 409
    assert db_snapshot() == before


def test_patching_the_state_says_how_to_change_it(superuser_api, world):
    before = db_snapshot()
    response = send(superuser_api, "patch", url("/api/tasks/{task}/", world), {"state": "approved"})
    assert response.status_code == 400
    assert "transition/" in response.json()["errors"]["state"][0]
    assert db_snapshot() == before


def test_duplicate_agent_name(superuser_api, world):
    before = db_snapshot()
    response = send(superuser_api, "post", "/api/agents/", {"name": world["agent"].name})
    assert response.status_code == 400
    assert "name" in response.json()["errors"]
    assert db_snapshot() == before
