"""Refusals over streamable HTTP: each a clear tool error (or 401), and nothing changed."""

import httpx2
import pytest
from django.conf import settings

from agents.services import agent_revoke
from tests import factories
from tests.mcpbridge.conftest import call, http_client, run, snapshot

pytestmark = pytest.mark.django_db(transaction=True)
_ACCEPT = "application/json, text/event-stream"


def _refused(url: str, token: str | None) -> bool:
    """The server answers 401 invalid_token on the wire, and the real client cannot connect."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    raw = httpx2.post(url, json=body, headers={**headers, "Accept": _ACCEPT})
    assert raw.status_code == 401
    assert 'error="invalid_token"' in raw.headers["www-authenticate"]

    async def scenario():
        async with http_client(url, token) as client:
            await call(client, "get_context")

    with pytest.raises(BaseException, match=r"unhandled errors|error response"):
        run(scenario())
    return True


def test_unknown_missing_and_revoked_tokens_are_refused_before_any_tool(mcp_url):
    factories.make_task()
    agent, token = factories.make_agent()
    agent_revoke(agent_id=agent.pk)
    before = snapshot()
    for bad in ("aiw_not-a-token", None, token):
        assert _refused(mcp_url, bad)
    assert snapshot() == before
    agent.refresh_from_db()
    assert agent.last_heartbeat_at is None  # not even touched


def test_refusals_change_nothing(mcp_url):
    project = factories.make_project()
    other_project = factories.make_project()
    mine = factories.make_task(project=project, priority=3)
    theirs = factories.make_task(project=project, priority=2)
    foreign = factories.make_task(project=other_project)
    _, my_token = factories.make_agent(project=project)
    _, their_token = factories.make_agent()

    async def claim():
        async with http_client(mcp_url, my_token) as client:
            _, a = await call(client, "get_next_task")
        async with http_client(mcp_url, their_token) as client:
            _, b = await call(client, "get_next_task", project=project.slug)
        return a, b

    a, b = run(claim())
    assert (a["task"]["id"], b["task"]["id"]) == (mine.pk, theirs.pk)
    before = snapshot()
    huge = "x" * (settings.TEXT_FIELD_MAX + 1)
    attempts = [
        # another agent's task
        ("log_progress", {"task_id": theirs.pk, "message": "hi"}, "not assigned to agent"),
        ("complete_task", {"task_id": theirs.pk, "summary": "done"}, "not assigned to agent"),
        ("release_task", {"task_id": theirs.pk, "reason": "x"}, "not assigned to agent"),
        ("get_feedback", {"task_id": theirs.pk}, "not assigned to agent"),
        ("ask_user_question", {"task_id": theirs.pk, "question": "?"}, "not assigned"),
        ("create_branch", {"task_id": theirs.pk}, "not assigned to agent"),
        # illegal transitions, with the allowed targets named
        ("update_task_status", {"task_id": mine.pk, "status": "approved"}, "Allowed from"),
        ("update_task_status", {"task_id": mine.pk, "status": "cancelled"}, "Allowed"),
        ("update_task_status", {"task_id": mine.pk, "status": "flying"}, "Unknown state"),
        # unknown ids
        ("log_progress", {"task_id": 999999, "message": "hi"}, "does not exist"),
        ("check_response", {"question_id": 999999}, "does not exist"),
        ("get_next_task", {"project": "no-such-project"}, "does not exist"),
        # the project restriction
        ("get_next_task", {"project": other_project.slug}, "may only work on project"),
        # wrong types
        (
            "log_progress",
            {"task_id": "seven", "message": "hi"},
            "[invalid] task_id must be an integer",
        ),
        (
            "log_progress",
            {"task_id": mine.pk, "message": ["a"]},
            "[invalid] message must be a string",
        ),
        (
            "ask_user_question",
            {"task_id": mine.pk, "question": "?", "options": "a"},
            "options must be a list",
        ),
        (
            "check_response",
            {"question_id": 1, "wait_seconds": 56},
            "wait_seconds must be at most 55",
        ),
        ("heartbeat", {"status": "dancing"}, "status must be one of 'idle'"),
        (
            "trigger_preview_deploy",
            {"task_id": mine.pk, "commit_sha": "not a sha"},
            "commit_sha must match",
        ),
        ("log_progress", {"message": "no task id"}, "[invalid] task_id is required"),
        # empty and oversize text
        ("log_progress", {"task_id": mine.pk, "message": "  "}, "message is required"),
        ("complete_task", {"task_id": mine.pk, "summary": ""}, "summary is required"),
        ("log_progress", {"task_id": mine.pk, "message": huge}, "at most 20000"),
        ("ask_user_question", {"task_id": mine.pk, "question": huge}, "at most 20000"),
        # planning needs can-plan
        ("list_projects", {}, "can-plan"),
        ("create_task", {"project": project.slug, "title": "t", "description": ""}, "can-plan"),
        ("create_subtasks", {"task_id": mine.pk, "subtasks": [{"title": "a"}]}, "can-plan"),
    ]

    async def refused():
        answers = []
        async with http_client(mcp_url, my_token) as client:
            for tool, arguments, _ in attempts:
                answers.append(await call(client, tool, **arguments))
        return answers

    answers = run(refused())
    for (tool, arguments, expected), (error, text) in zip(attempts, answers, strict=True):
        assert error, (tool, arguments)
        assert expected in text, (tool, text)
        # The tool result's own text, starting with the code (no SDK prefix, no pydantic URL).
        assert text.startswith("[") and "Error executing" not in text, text
        assert "pydantic" not in text and "http" not in text, text
    assert snapshot() == before
    assert foreign.state == "backlog"
