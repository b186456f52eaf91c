"""An in-process MCP HTTP server, real MCP clients, and a database other processes can reach.

The stdio and daphne tests start the server as a subprocess, which must see the test database:
on SQLite that needs a file (the default test database lives in memory), so it is put in a
temporary directory of this run. MariaDB's test database is reachable as it is.
"""

import asyncio
import contextlib
import io
import os
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
import uvicorn
from django.conf import settings
from django.db import connection
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcpbridge.server import build_server, http_app


def pytest_configure(config: pytest.Config) -> None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        path = os.path.join(tempfile.mkdtemp(prefix="aiw-mcp-"), "test.sqlite3")
        db.setdefault("TEST", {})["NAME"] = path


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a server subprocess: this run's test database, nothing else new."""
    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        url = f"sqlite:///{s['NAME']}"
    else:
        auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
        url = f"mysql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 3306}/{s['NAME']}"
    env = {k: v for k, v in os.environ.items() if k != "AIWORKER_AGENT_TOKEN"}
    return {**env, "DATABASE_URL": url, "CONN_MAX_AGE": "0", **extra}


@pytest.fixture(scope="session")
def mcp_url() -> Iterator[str]:
    """The MCP server over streamable HTTP, served by uvicorn in a thread of this process."""
    sock = free_socket()
    config = uvicorn.Config(http_app(build_server()), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.daemon = True
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    server.should_exit = True
    thread.join(timeout=10)


@contextlib.asynccontextmanager
async def http_client(url: str, token: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(90.0)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> tuple[bool, Any]:
    """(is_error, answer): the structured answer, or the error text."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        return True, " ".join(getattr(c, "text", "") for c in result.content)
    return False, result.structured_content


CANCEL_GUARD = 30.0  # seconds for the tasks left at the end to finish once cancelled


def run(coro: Any) -> Any:
    """`asyncio.run`, except that a task left running which does not end when cancelled fails
    the test with its stack instead of hanging in asyncio.run's own clean-up."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            _cancel_left_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_left_tasks(loop: asyncio.AbstractEventLoop) -> None:
    left = asyncio.all_tasks(loop)
    if not left:
        return
    for task in left:
        task.cancel()
    _, pending = loop.run_until_complete(asyncio.wait(left, timeout=CANCEL_GUARD))
    if pending:
        stacks = []
        for task in pending:
            out = io.StringIO()
            task.print_stack(file=out)
            stacks.append(out.getvalue() + "awaiting:\n" + _await_chain(task.get_coro()))
        raise AssertionError(
            f"{len(pending)} task(s) did not end {CANCEL_GUARD:.0f} s after being cancelled:\n"
            + "\n".join(stacks)
        )


def _await_chain(awaitable: Any) -> str:
    """Where a coroutine is suspended, innermost last: `Task.print_stack` shows only the
    task's own frame, not the library coroutine it is stuck in."""
    lines = []
    while awaitable is not None and len(lines) < 50:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            lines.append(f"  {awaitable!r}")
            break
        lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return "\n".join(lines)


def snapshot() -> tuple:
    """Everything an agent's call could change, to assert that a refusal changed nothing."""
    from agents.models import Agent
    from tasks.models import Task, TaskEvent, TaskFeedback, TaskQuestion

    return (
        list(
            Task.objects.order_by("pk").values_list(
                "pk", "state", "assigned_agent_id", "attempt_count", "title", "spec_goals"
            )
        ),
        TaskEvent.objects.count(),
        list(TaskQuestion.objects.order_by("pk").values_list("pk", "answered_at")),
        list(TaskFeedback.objects.order_by("pk").values_list("pk", "seen_at")),
        list(Agent.objects.order_by("pk").values_list("pk", "status", "current_task_id")),
        list(Task.depends_on.through.objects.order_by("pk").values_list("pk")),
    )
