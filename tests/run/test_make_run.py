"""`make run` started as the README says, and watched keep time.

Real parts: `make run` itself (honcho with daphne, a Celery worker and Celery beat on the
filesystem broker), the real MCP client with the demo agent's token, a board WebSocket logged in
as the demo admin, all on the embedded default in a temporary var/ directory
(AIWORKER_VAR_DIR) of the same checkout. The test's own database is not involved, so the
MariaDB + Redis run of the suite runs this same embedded `make run` (what the command is for);
the full stack's separate processes are tested in tests/scaleout/.

The agent claims a task and goes silent: with TASK_LEASE=5s the lease job (beat → worker) puts
the task back in the backlog with its timeline line, and the board open on the web process gets
the worker's task.status_changed through the relay. Then one SIGINT to the process group, as a
terminal's Ctrl-C sends it, and no process of the tree is left.
"""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx2
import websockets
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[2]
# Whatever the suite runs on, `make run` gets only the embedded default plus what the test sets.
DROPPED = (
    "DATABASE_URL",
    "REDIS_URL",
    "CHANNELS_PREFIX",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "LIVE_EVENTS_FORWARD_URL",
    "AIWORKER_AGENT_TOKEN",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
)
ACTIVE = ("in_progress", "needs_input")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(base: str, make: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    # A fresh var/ means every migration first; the machine may be busy with other suites.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if make.poll() is not None:
            raise AssertionError(f"make run exited:\n{log.read_text()[-4000:]}")
        try:
            if httpx2.get(f"{base}/api/health/", timeout=5).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"/api/health/ never answered 200:\n{log.read_text()[-4000:]}")


def _login(base: str, password: str) -> str:
    """The demo admin's session cookie, through the login form."""
    with httpx2.Client(base_url=base, timeout=30) as http:
        page = http.get("/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert csrf, page.text[:500]
        answer = http.post(
            "/login/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": csrf[1]},
            headers={"Referer": f"{base}/login/"},
        )
        assert answer.status_code == 302, answer.text[:500]
        return f"sessionid={http.cookies['sessionid']}"


async def _call(agent: Client, tool: str) -> dict:
    result = await agent.call_tool(tool, {})
    assert not result.is_error, result.content
    return result.structured_content or {}


async def _held(api: httpx2.AsyncClient, agent_id: int) -> list[int]:
    answer = await api.get("/api/tasks/", params={"agent": agent_id, "state": list(ACTIVE)})
    assert answer.status_code == 200, answer.text
    return [task["id"] for task in answer.json()["results"]]


async def _until(predicate, what: str, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


async def _claim_and_go_silent(base: str, cookie: str, token: str) -> dict:
    """Claim over MCP, go silent, and return what the board and the API saw."""
    port = base.rsplit(":", 1)[1]
    headers = {"Cookie": cookie}
    mcp_headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(base_url=base, headers=headers, timeout=30) as api,
        websockets.connect(
            f"ws://127.0.0.1:{port}/ws/projects/demo/board/",
            additional_headers=headers,
            origin=f"http://127.0.0.1:{port}",
        ) as board,
    ):
        hello = json.loads(await asyncio.wait_for(board.recv(), 30))
        assert hello["event"] == "board.hello"
        agents = (await api.get("/api/agents/")).json()["results"]
        agent_id = next(a["id"] for a in agents if a["name"] == "demo-agent")

        # Whatever the demo data lets the demo agent hold runs out first: one call renews
        # those leases to 5 s, and then the agent says nothing more until it claims.
        async with (
            httpx2.AsyncClient(headers=mcp_headers, timeout=60) as http,
            Client(streamable_http_client(f"{base}/mcp", http_client=http)) as agent,
        ):
            await _call(agent, "heartbeat")

        async def holds_nothing() -> bool:
            return not await _held(api, agent_id)

        await _until(holds_nothing, "the demo agent's earlier tasks to come back")

        async with (
            httpx2.AsyncClient(headers=mcp_headers, timeout=60) as http,
            Client(streamable_http_client(f"{base}/mcp", http_client=http)) as agent,
        ):
            claimed = (await _call(agent, "get_next_task"))["task"]
        assert claimed, "nothing claimable in the demo project"
        assert await _held(api, agent_id) == [claimed["id"]]
        # Silent from here on: only the lease job can move the task.

        # The board hears of the task's moves in order: the claim (sent by the web process,
        # where MCP runs), then the release (sent by the worker, through the relay). Events of
        # the earlier tasks coming back are still queued before them.
        moves = []
        deadline = time.monotonic() + 120
        while len(moves) < 2:
            left = deadline - time.monotonic()
            assert left > 0, f"the board heard only {moves} of task {claimed['id']}"
            message = json.loads(await asyncio.wait_for(board.recv(), left))
            data = message.get("data", {})
            ours = message.get("event") == "task.status_changed" and data.get("id") == claimed["id"]
            if ours and (moves or data.get("to_state") == "in_progress"):
                moves.append(data)
        detail = (await api.get(f"/api/tasks/{claimed['id']}/")).json()
        timeline = (await api.get(f"/api/tasks/{claimed['id']}/events/")).text
    return {"claimed": claimed, "moves": moves, "detail": detail, "timeline": timeline}


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is the state; a zombie has exited already (its parent has not reaped it yet).
    return None if fields[0] == "Z" else fields[19]


def _tree(root: int) -> dict[int, tuple[str, str]]:
    """Every living descendant of `root` (honcho puts its children in sessions of their own)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])  # ppid
    found: dict[int, tuple[str, str]] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                started = _start_time(child)
                if started is not None:
                    try:
                        cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
                    except OSError:
                        continue
                    found[child] = (started, cmd.decode(errors="replace"))
                    todo.append(child)
    return found


def test_make_run_runs_the_periodic_jobs_and_one_ctrl_c_stops_everything(tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    var_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    # DEMO_AGENT=off: the test is the demo agent here (its token claims, then goes silent).
    env.update(
        {
            "PORT": str(port),
            "AIWORKER_VAR_DIR": str(var_dir),
            "TASK_LEASE": "5s",
            "DEMO_AGENT": "off",
        }
    )
    log = tmp_path / "make-run.log"
    make = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    tree: dict[int, tuple[str, str]] = {}
    try:
        _wait_healthy(base, make, log)
        tree = _tree(make.pid)  # to clean up after a failure too: the children outlive make
        credentials = json.loads((var_dir / "demo-credentials.json").read_text())
        # `make run` prints the same token (seed_demo): the log shows it.
        assert credentials["agent_token"] in log.read_text()
        cookie = _login(base, credentials["admin_password"])

        seen = asyncio.run(_claim_and_go_silent(base, cookie, credentials["agent_token"]))

        claimed, (claim, release) = seen["claimed"], seen["moves"]
        assert (claim["from_state"], claim["to_state"]) == ("backlog", "in_progress")
        assert (release["from_state"], release["to_state"]) == ("in_progress", "backlog")
        assert seen["detail"]["state"] == "backlog"
        assert seen["detail"]["assigned_agent"] is None
        assert "Lease expired" in seen["timeline"]
        assert claimed["id"] == seen["detail"]["id"]

        tree = _tree(make.pid)
        commands = [cmd for _, cmd in tree.values()]
        for process in ("honcho start", "daphne", "celery -A aiworker worker"):
            assert any(process in cmd for cmd in commands), (process, commands)
        assert any("celery -A aiworker beat" in cmd for cmd in commands), commands

        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C: make and honcho; honcho stops the rest
        make.wait(timeout=120)
        left = {pid: cmd for pid, (started, cmd) in tree.items() if _start_time(pid) == started}
        assert left == {}, f"left running after Ctrl-C: {left}\n{log.read_text()[-3000:]}"
        output = log.read_text()
        assert "SIGINT received" in output
        for name in ("web", "worker", "beat", "agent"):
            assert re.search(rf"{name}\.1 stopped \(rc=", output), output[-3000:]
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=30)
        for pid, (started, _) in tree.items():
            if _start_time(pid) == started:
                os.kill(pid, signal.SIGKILL)
