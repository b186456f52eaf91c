"""The same server over stdio (a `manage.py mcp_server` subprocess) and mounted at /mcp in the
ASGI app served by daphne (a subprocess on a free port), both on this run's test database."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx2
import pytest
from django.conf import settings
from mcp import Client, StdioServerParameters

from tasks.models import Task, TaskEvent
from tests import factories
from tests.mcpbridge.conftest import call, free_socket, http_client, run, snapshot, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
MANAGE = os.path.join(settings.BASE_DIR, "manage.py")
DAPHNE = os.path.join(os.path.dirname(sys.executable), "daphne")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (a server's clean shutdown), then SIGKILL if it lingers."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _stdio(token: str) -> Client:
    params = StdioServerParameters(
        command=sys.executable,
        args=[MANAGE, "mcp_server", "--transport", "stdio"],
        env=subprocess_env(AIWORKER_AGENT_TOKEN=token, LOG_LEVEL="WARNING"),
        cwd=str(settings.BASE_DIR),
    )
    return Client(params, read_timeout_seconds=60)


def test_stdio_transport_with_token_from_environment():
    task = factories.make_task()
    agent, token = factories.make_agent()
    other_task = factories.make_task(project=task.project)

    async def scenario():
        async with _stdio(token) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            claimed = await call(client, "get_next_task")
            progress = await call(client, "log_progress", task_id=task.pk, message="over stdio")
            illegal = await call(client, "update_task_status", task_id=task.pk, status="approved")
            return tools, claimed, progress, illegal

    tools, claimed, progress, illegal = run(scenario())
    assert {"get_next_task", "check_response", "create_subtasks"} <= tools
    assert len(tools) == 18
    assert claimed[1]["task"]["id"] == task.pk
    assert not progress[0]
    assert illegal[0] and "Allowed from 'in_progress'" in illegal[1]
    assert TaskEvent.objects.filter(task=task, kind="progress", actor_agent=agent).count() == 1

    before = snapshot()

    async def forged():
        async with _stdio("aiw_forged") as client:
            return await call(client, "get_next_task"), await call(client, "get_context")

    answers = run(forged())
    for error, text in answers:
        assert error and "Unknown agent token" in text
    assert snapshot() == before
    assert Task.objects.get(pk=other_task.pk).state == "backlog"


def test_mounted_at_mcp_under_daphne():
    """STACK.md: daphne sends no lifespan events; the mount must start its manager itself."""
    task = factories.make_task()
    _, token = factories.make_agent()
    sock = free_socket()
    port = sock.getsockname()[1]
    process = subprocess.Popen(
        [DAPHNE, "--fd", str(sock.fileno()), "aiworker.asgi:application"],
        cwd=str(settings.BASE_DIR),
        env=subprocess_env(LOG_LEVEL="WARNING"),
        pass_fds=[sock.fileno()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    sock.close()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # daphne is up when Django answers (any status)
            try:
                httpx2.get(f"{base}/admin/login/", timeout=2)
                break
            except httpx2.TransportError:
                assert process.poll() is None, (
                    process.stderr.read().decode() if process.stderr else ""
                )
                assert time.monotonic() < deadline, "daphne did not start"
                time.sleep(0.2)

        async def scenario():
            async with http_client(f"{base}/mcp", token) as client:
                first = await call(client, "get_next_task")
                second = await call(client, "get_context")
                return first, second

        first, second = run(scenario())
        assert not first[0] and first[1]["task"]["id"] == task.pk
        assert not second[0] and second[1]["task"]["state"] == "in_progress"
        unauthenticated = httpx2.post(f"{base}/mcp", json={}, timeout=10)
        assert unauthenticated.status_code == 401
        assert httpx2.get(f"{base}/admin/login/", timeout=10).status_code == 200  # Django still
    finally:
        _stop(process)


def test_standalone_http_server_with_two_worker_processes():
    """`mcp_server --transport http --workers 2`: uvicorn worker processes share the port and
    each serves any agent's call (the server is stateless); every claim is a different task."""
    tasks = [factories.make_task() for _ in range(4)]
    tokens = [factories.make_agent()[1] for _ in range(4)]
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()  # uvicorn's supervisor binds the port itself and hands it to its workers
    command = [sys.executable, MANAGE, "mcp_server", "--transport", "http", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "2"],
        cwd=str(settings.BASE_DIR),
        env=subprocess_env(LOG_LEVEL="WARNING"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while True:  # up when it refuses a call without a token
            try:
                if httpx2.post(url, json={}, timeout=2).status_code == 401:
                    break
            except httpx2.TransportError:
                pass
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "mcp_server did not start"
            time.sleep(0.2)

        async def claim(token: str) -> tuple[bool, object]:
            async with http_client(url, token) as client:  # a connection of its own
                return await call(client, "get_next_task")

        async def scenario():
            return await asyncio.gather(*(claim(t) for t in tokens))

        answers = run(scenario())
        assert all(not error for error, _ in answers), answers
        claimed = sorted(answer["task"]["id"] for _, answer in answers)
        assert claimed == sorted(t.pk for t in tasks)
    finally:
        _stop(process)


def test_workers_must_be_positive():
    result = subprocess.run(
        [sys.executable, MANAGE, "mcp_server", "--transport", "http", "--workers", "0"],
        cwd=str(settings.BASE_DIR),
        env=subprocess_env(LOG_LEVEL="WARNING"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "--workers must be at least 1" in result.stderr
