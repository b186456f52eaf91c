"""Scale-out: 2 web processes (daphne), 2 MCP servers and 2 Celery workers against one MariaDB
test database and one Redis (an own redis-server on a free port). A board WebSocket connected
to web process A sees a claim an agent made through MCP server B; web process B serves the
same board. Real processes, real MCP client, plain `websockets` client with a session cookie.
MariaDB only: SQLite's test database cannot be shared by separate processes here."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
import websockets
from django.conf import settings
from django.db import connection
from django.test import Client

from projects.models import Membership
from tasks.models import Task
from tasks.states import TaskState
from tests import factories
from tests.faults.conftest import free_port, own_redis  # noqa: F401 - the Redis fixture
from tests.mcpbridge.conftest import call, http_client

pytestmark = [pytest.mark.mariadb, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def _env(redis_url: str) -> dict[str, str]:
    cfg = connection.settings_dict
    return {
        **{k: v for k, v in os.environ.items() if k != "AIWORKER_AGENT_TOKEN"},
        "DATABASE_URL": f"mysql://{cfg['USER']}@{cfg['HOST'] or '127.0.0.1'}:"
        f"{cfg['PORT'] or 3306}/{cfg['NAME']}",
        "REDIS_URL": redis_url,
        "CHANNELS_PREFIX": "scaleout",
        "CONN_MAX_AGE": "0",
    }


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listening on {port}: {log.read_text()[-2000:]}")


async def _board_sees_claim(web_a: int, mcp_b: int, slug: str, cookie: str, token: str) -> dict:
    headers = {"Cookie": cookie}
    origin = f"http://127.0.0.1:{web_a}"
    url = f"ws://127.0.0.1:{web_a}/ws/projects/{slug}/board/"
    async with websockets.connect(url, additional_headers=headers, origin=origin) as board:
        hello = json.loads(await asyncio.wait_for(board.recv(), 30))
        assert hello
        async with http_client(f"http://127.0.0.1:{mcp_b}/mcp", token) as agent:
            is_error, claimed = await call(agent, "get_next_task")
        assert not is_error, claimed
        deadline = time.monotonic() + 30
        while True:
            message = json.loads(await asyncio.wait_for(board.recv(), 30))
            if message.get("event") == "task.status_changed":
                return {"message": message, "claimed": claimed}
            assert time.monotonic() < deadline, "no status event reached the board"


def test_board_on_web_a_sees_a_claim_made_through_mcp_b(own_redis, project, user, tmp_path):  # noqa: F811
    task = factories.make_task(project=project, title="scale me")
    # The servers are other processes: the test settings' default role does not reach them.
    Membership.objects.create(project=project, user=user, role=Membership.Role.VIEWER)
    _, token = factories.make_agent(name="scaled")
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    env = _env(own_redis.url)
    py = sys.executable
    ports = {name: free_port() for name in ("web_a", "web_b", "mcp_a", "mcp_b")}
    processes: list[subprocess.Popen] = []
    try:
        for name in ("web_a", "web_b"):
            log = tmp_path / f"{name}.log"
            args = [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(ports[name])]
            processes.append(_start([*args, "aiworker.asgi:application"], env, log))
        for name in ("mcp_a", "mcp_b"):
            log = tmp_path / f"{name}.log"
            args = [py, "manage.py", "mcp_server", "--transport", "http"]
            processes.append(_start([*args, "--port", str(ports[name])], env, log))
        for i in (1, 2):
            args = [py, "-m", "celery", "-A", "aiworker", "worker", "-c", "1", "-n", f"w{i}@%h"]
            args += ["--without-gossip", "--without-mingle", "-l", "warning"]
            processes.append(_start(args, env, tmp_path / f"worker{i}.log"))
        for process, name in zip(processes, ports, strict=False):
            _wait_port(ports[name], process, tmp_path / f"{name}.log")

        seen = asyncio.run(
            _board_sees_claim(ports["web_a"], ports["mcp_b"], project.slug, cookie, token)
        )
        data = seen["message"]["data"]
        assert data["id"] == task.pk
        assert (data["from_state"], data["to_state"]) == ("backlog", "in_progress")
        assert Task.objects.get(pk=task.pk).state == TaskState.IN_PROGRESS
        # Web process B renders the same board from the same database.
        page = httpx2.get(
            f"http://127.0.0.1:{ports['web_b']}/projects/{project.slug}/board/",
            headers={"Cookie": cookie},
            timeout=30,
        )
        assert page.status_code == 200
        assert f'id="task-{task.pk}" data-task-id="{task.pk}" data-state="in_progress"' in page.text
        assert all(p.poll() is None for p in processes), "a process died during the test"
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
