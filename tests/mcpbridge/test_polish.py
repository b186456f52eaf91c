"""What a model sees of the server: annotations, dedented descriptions, the version, error texts
that start with the code, the record of CLI calls, and the stdio front's early `initialize`."""

import json
import os
import subprocess
import sys
import tomllib

import pytest
from django.conf import settings
from mcp import Client, StdioServerParameters
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from agents.models import AgentMcpCall
from mcpbridge import identity, stdio
from tests import factories
from tests.mcpbridge.conftest import call, http_client, run, snapshot, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
HINTS = ("read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint")


def test_every_tool_is_annotated_and_described_without_indentation(mcp_url):
    _, token = factories.make_agent()

    async def scenario():
        async with http_client(mcp_url, token) as client:
            return client.server_info, (await client.list_tools()).tools

    info, tools = run(scenario())
    pyproject = tomllib.loads((settings.BASE_DIR / "pyproject.toml").read_text())
    assert info.name == "aiworker" and info.version == pyproject["project"]["version"]
    assert len(tools) == 18
    for tool in tools:
        assert tool.annotations is not None, tool.name
        assert all(isinstance(getattr(tool.annotations, h), bool) for h in HINTS), tool.name
        assert tool.description and "\n    " not in tool.description, tool.name
    by_name = {t.name: t.annotations for t in tools}
    assert by_name["get_context"].read_only_hint and by_name["check_response"].read_only_hint
    assert not by_name["log_progress"].read_only_hint
    assert by_name["release_task"].destructive_hint
    assert by_name["create_pull_request"].open_world_hint


def test_errors_are_the_results_own_text_and_cli_calls_are_recorded(mcp_url):
    project = factories.make_project()
    theirs = factories.make_task(project=project)
    other, _ = factories.make_agent()
    theirs.assigned_agent = other
    theirs.state = "in_progress"
    theirs.save()
    agent, token = factories.make_agent()
    # Any call is a heartbeat (a starting agent becomes idle): not what is checked here.
    type(agent).objects.filter(pk=agent.pk).update(status="idle")
    before = snapshot()

    async def scenario():
        async with http_client(mcp_url, token) as client:
            return [
                await call(client, "log_progress", task_id=theirs.pk, message="hi"),
                await call(client, "log_progress", task_id="abc", message="hi"),
                await call(client, "create_subtasks", task_id=theirs.pk, subtasks=[{}]),
                await call(client, "no_such_tool"),
            ]

    texts = [text for error, text in run(scenario()) if error]
    assert len(texts) == 4
    assert texts[0].startswith("[permission_denied] Task")
    assert texts[1] == "[invalid] task_id must be an integer. Fix the argument and call again."
    assert texts[2].startswith("[invalid] subtasks[0].title is required")
    assert texts[3].startswith("[not_found] Unknown tool: no_such_tool")
    assert snapshot() == before
    # The refused call that reached a tool body is recorded for the CLI; argument errors are not.
    row = AgentMcpCall.objects.get(agent=agent)
    assert (row.tool, row.calls, row.refused, row.last_error_code) == (
        "log_progress",
        1,
        1,
        "permission_denied",
    )


def test_runner_calls_are_not_recorded_and_heartbeat_tells_the_cli_count(mcp_url):
    _, token = factories.make_agent(kind="codex")

    async def scenario(headers):
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}", **headers}) as http,
            Client(streamable_http_client(mcp_url, http_client=http)) as client,
        ):
            return await call(client, "heartbeat")

    _, runner_view = run(scenario({"X-AiWorker-Client": "runner"}))
    assert runner_view["kind"] == "codex" and runner_view["cli_calls"] == 0
    run(scenario({}))  # the CLI's heartbeat
    _, runner_view = run(scenario({"X-AiWorker-Client": "runner"}))
    assert runner_view["cli_calls"] == 1


def test_front_constants_follow_the_sdk():
    assert stdio.HANDSHAKE_VERSIONS == HANDSHAKE_PROTOCOL_VERSIONS
    pyproject = tomllib.loads((settings.BASE_DIR / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == identity.VERSION


def test_stdio_front_answers_initialize_early_and_like_the_server():
    task = factories.make_task()
    agent, token = factories.make_agent()
    env = subprocess_env(AIWORKER_AGENT_TOKEN=token, LOG_LEVEL="WARNING")
    # On the wire: the front's answer comes first, and the server's own (dropped) agrees with it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpbridge.stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=settings.BASE_DIR,
    )
    init = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    assert proc.stdin and proc.stdout
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in lines).encode())
    proc.stdin.flush()
    first = json.loads(proc.stdout.readline())
    second = json.loads(proc.stdout.readline())
    proc.stdin.close()  # end of input: the server stops
    proc.wait(timeout=60)
    err = proc.stderr.read() if proc.stderr else b""
    assert first["id"] == 1 and first["result"]["serverInfo"]["version"] == identity.VERSION
    assert first["result"]["protocolVersion"] == "2025-06-18"
    assert second["id"] == 2 and len(second["result"]["tools"]) == 18
    assert b"differs" not in err, err

    # The real client through the front.
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcpbridge.stdio"], env=env, cwd=str(settings.BASE_DIR)
    )

    async def scenario():
        async with Client(params, read_timeout_seconds=60, mode="legacy") as client:
            return await call(client, "get_next_task")

    error, claimed = run(scenario())
    assert not error and claimed["task"]["id"] == task.pk
    assert AgentMcpCall.objects.get(agent=agent).last_client == "stdio"


def test_stdio_front_without_token_fails_at_once():
    env = {k: v for k, v in os.environ.items() if k != "AIWORKER_AGENT_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "mcpbridge.stdio"], env=env, capture_output=True, timeout=30
    )
    assert done.returncode == 2 and b"AIWORKER_AGENT_TOKEN" in done.stderr
