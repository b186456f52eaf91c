"""5,000 concurrent `check_response(wait_seconds=55)` waits in one MCP server process.

The server under test is the real one on a throwaway test database: with Redis the standalone
`manage.py mcp_server --transport http`, answered from this process (the answer crosses
processes through Redis, as in a fleet); on the embedded default (in-memory channel layer,
which does not cross processes) daphne serving `aiworker.asgi` (the web app with MCP mounted,
what `make run` serves), answered through the REST API of that same process.

The waiters are driven by a light raw HTTP client (aiohttp, one JSON-RPC `tools/call` POST per
wait to the stateless `/mcp` endpoint with the agent's bearer token; the server answers JSON):
5,000 real `mcp` clients would take the bench machine's two cores from the server. A waiter
told "pending" calls again, as an agent does. The heartbeats are made with the real `mcp`
client.

Rows (each beside a limit measured in this run):
- another agent's heartbeat p95 with the waits open, beside the same heartbeat with none;
- an answer reaching its waiter: from the start of the answering call (its transaction, commit
  and send included) to the waiter's HTTP answer, beside a bare channel-layer group_send ->
  receive in this process;
- the server's Redis connections (its sockets to Redis, from /proc) and RSS, with and without
  the waits; its CPU while the waits are open and nothing else happens.
"""

import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from django.conf import settings
from django.db import connection

from tests.bench.bench_claims import MANAGE, _cpu_seconds, _free_port, _pct
from tests.bench.table import Row, ratio

WAITERS = int(os.environ.get("BENCH_WAITERS", "5000"))
ANSWERS = int(os.environ.get("BENCH_WAIT_ANSWERS", "200"))
HEARTBEATS = 150
WAIT_SECONDS = 55
# The waits start evenly over RAMP_SECONDS. From then until the first of them times out all are
# open and no call comes in (the quiet window); after it each waiter calls again on its own
# schedule, N / RAMP_SECONDS calls a second (the steady state of a fleet waiting this long).
RAMP_SECONDS = 50.0
REDIS_PORT = 6379
LOG = os.path.join(tempfile.gettempdir(), "bench_waits_server.log")  # the server's stderr


def _setup(count: int) -> dict[str, Any]:
    """A project, `count` agents each holding a task in needs_input with one open question,
    one more agent for the heartbeats, and a superuser with a write API token."""
    from django.contrib.auth import get_user_model

    from agents.models import Agent, AgentStatus
    from agents.services import hash_token
    from projects.api_tokens import api_token_create
    from projects.models import ApiToken, Project
    from tasks.models import Task, TaskQuestion

    project = Project.objects.create(name=f"waits {time.time()}", slug=f"w{time.time_ns()}")
    tokens = [f"aiw_benchwait{time.time_ns()}_{i}" for i in range(count + 1)]
    Agent.objects.bulk_create(
        Agent(
            name=f"wait-{i}-{time.time_ns()}",
            token_hash=hash_token(t),
            token_prefix=t[:8],
            status=AgentStatus.BUSY,
        )
        for i, t in enumerate(tokens)
    )
    agents = list(Agent.objects.filter(token_hash__in=[hash_token(t) for t in tokens]))
    by_hash = {a.token_hash: a for a in agents}
    ordered = [by_hash[hash_token(t)] for t in tokens]
    Task.objects.bulk_create(
        Task(project=project, title=f"W{i}", state="needs_input", assigned_agent=a, position=i)
        for i, a in enumerate(ordered[:count])
    )
    tasks = {t.assigned_agent_id: t for t in Task.objects.filter(project=project)}
    TaskQuestion.objects.bulk_create(
        TaskQuestion(task=tasks[a.pk], agent=a, question="Go?") for a in ordered[:count]
    )
    questions = {q.agent_id: q for q in TaskQuestion.objects.filter(task__project=project)}
    user = get_user_model().objects.create_superuser(f"bw{time.time_ns()}", "bw@example.org", None)
    _, api_key = api_token_create(user=user, scope=ApiToken.Scope.WRITE, name="bench")
    waits = [
        (tokens[i], questions[a.pk].pk, questions[a.pk].task_id)
        for i, a in enumerate(ordered[:count])
    ]
    return {"waits": waits, "heartbeat_token": tokens[count], "user": user, "api_key": api_key}


def _redis_sockets(pid: int) -> int:
    """The server's TCP connections to Redis: its socket inodes matched in /proc/net/tcp*."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                    if remote_port == REDIS_PORT and fields[9] in inodes:
                        count += 1
        except OSError:
            continue
    return count


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _start(env: dict[str, str], embedded: bool, log: Any) -> tuple[subprocess.Popen, str]:
    import httpx2

    port = _free_port()
    if embedded:
        daphne = os.path.join(os.path.dirname(sys.executable), "daphne")
        command = [daphne, "-b", "127.0.0.1", "-p", str(port), "aiworker.asgi:application"]
    else:
        command = [sys.executable, MANAGE, "mcp_server", "--transport", "http", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, cwd=str(settings.BASE_DIR), stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx2.post(base + "/mcp", json={}, timeout=2)  # 401 once it listens
            return process, base
        except httpx2.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start")


async def _heartbeats(url: str, token: str, count: int, most: float = 30.0) -> list[float]:
    """Up to `count` heartbeats one after the other, for at most `most` seconds."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    latencies = []
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        until = time.monotonic() + most
        for _ in range(count):
            if time.monotonic() > until:
                break
            started = time.perf_counter()
            result = await client.call_tool("heartbeat", {"status": "busy"})
            latencies.append(time.perf_counter() - started)
            if result.is_error:
                raise RuntimeError(result.content)
            await asyncio.sleep(0.01)
    return latencies


async def _layer_latency(count: int) -> list[float]:
    """The yardstick: a bare group_send -> receive on this process's channel layer."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("bench-waits-yardstick", channel)
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        await layer.group_send("bench-waits-yardstick", {"type": "x", "i": i})
        await layer.receive(channel)
        latencies.append(time.perf_counter() - started)
    await layer.group_discard("bench-waits-yardstick", channel)
    return latencies


class _Waiters:
    """WAITERS raw JSON-RPC check_response calls; each calls again while it says pending."""

    def __init__(self, url: str, waits: list[tuple[str, int, int]]) -> None:
        self.url, self.waits = url, waits
        self.answered: dict[int, float] = {}  # question id -> when its answer arrived
        self.errors: list[str] = []
        self.calls = 0
        self.in_flight = 0  # calls sent and not answered yet
        self.stop = False

    async def run(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=WAIT_SECONDS + 120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            self.http = http
            spacing = RAMP_SECONDS / len(self.waits)
            await asyncio.gather(
                *(self._one(t, q, i * spacing) for i, (t, q, _) in enumerate(self.waits))
            )

    async def _one(self, token: str, question_id: int, delay: float) -> None:
        await asyncio.sleep(delay)
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {
                "name": "check_response",
                "arguments": {"question_id": question_id, "wait_seconds": WAIT_SECONDS},
            },
        }
        while not self.stop:
            self.calls += 1
            self.in_flight += 1
            try:
                async with self.http.post(self.url, json=body, headers=headers) as response:
                    text = await response.text()
            except Exception as exc:  # the server stopped at the end of the bench
                if not self.stop:
                    self.errors.append(repr(exc))
                return
            finally:
                self.in_flight -= 1
            arrived = time.perf_counter()
            try:
                result = json.loads(text)["result"]
                answer = result["structuredContent"]
            except (KeyError, ValueError, TypeError):
                self.errors.append(text[:200])
                return
            if result.get("isError"):
                self.errors.append(text[:200])
                return
            if answer["status"] == "answered":
                self.answered[question_id] = arrived
                return


async def _answer_all(
    data: dict[str, Any], waiters: _Waiters, base: str, embedded: bool
) -> tuple[list[float], int]:
    """Answer ANSWERS questions, one every 30 ms; latencies of those whose waiter got it."""
    import aiohttp

    from aiworker.actors import Actor
    from tasks.services import question_answer

    chosen = data["waits"][:: max(1, len(data["waits"]) // ANSWERS)][:ANSWERS]
    starts: dict[int, float] = {}
    actor = Actor.of_user(data["user"])
    async with aiohttp.ClientSession() as http:
        for _, question_id, task_id in chosen:
            starts[question_id] = time.perf_counter()
            if embedded:
                url = f"{base}/api/tasks/{task_id}/questions/{question_id}/answer/"
                headers = {"Authorization": f"Token {data['api_key']}"}
                async with http.post(url, json={"answer": "yes"}, headers=headers) as response:
                    if response.status != 200:
                        raise RuntimeError(f"answer: {response.status} {await response.text()}")
            else:
                await asyncio.to_thread(
                    question_answer, question_id=question_id, actor=actor, answer="yes"
                )
            await asyncio.sleep(0.03)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(q in waiters.answered for q in starts):
        await asyncio.sleep(0.1)
    latencies = [waiters.answered[q] - s for q, s in starts.items() if q in waiters.answered]
    return latencies, len(starts) - len(latencies)


async def _scenario(process: subprocess.Popen, base: str, data: dict, embedded: bool) -> dict:
    pid, url, hb_token = process.pid, base + "/mcp", data["heartbeat_token"]
    out: dict[str, Any] = {}
    out["layer"] = await _layer_latency(200)
    out["rss0"], out["redis0"] = _rss_mb(pid), _redis_sockets(pid)
    out["hb0"] = await _heartbeats(url, hb_token, HEARTBEATS)
    waiters = _Waiters(url, data["waits"])
    running = asyncio.ensure_future(waiters.run())
    started, cpu0 = time.monotonic(), _cpu_seconds(pid) or 0.0
    await asyncio.sleep(RAMP_SECONDS + 0.5)
    out["cpu_per_call"] = ((_cpu_seconds(pid) or 0.0) - cpu0) * 1000 / max(1, waiters.calls)
    # The quiet window: every wait open, no call.
    out["open_quiet"] = waiters.in_flight
    cpu1 = _cpu_seconds(pid) or 0.0
    await asyncio.sleep(2)
    out["idle_cpu"] = ((_cpu_seconds(pid) or 0.0) - cpu1) / 2
    out["rss"], out["redis"] = _rss_mb(pid), _redis_sockets(pid)
    quiet_left = started + WAIT_SECONDS - 0.5 - time.monotonic()
    out["hb_quiet"] = await _heartbeats(url, hb_token, HEARTBEATS, most=quiet_left)
    out["open_quiet"] = min(out["open_quiet"], waiters.in_flight)
    # The steady state: the waiters call again as their waits time out.
    await asyncio.sleep(max(0.0, started + WAIT_SECONDS + 1 - time.monotonic()))
    calls, cpu2, t2 = waiters.calls, _cpu_seconds(pid) or 0.0, time.monotonic()
    out["open_steady"] = waiters.in_flight
    hb_task = asyncio.ensure_future(_heartbeats(url, hb_token, HEARTBEATS, most=10))
    out["answers"], out["lost"] = await _answer_all(data, waiters, base, embedded)
    out["hb"] = await hb_task
    out["open_steady"] = min(out["open_steady"], waiters.in_flight)
    elapsed = time.monotonic() - t2
    out["steady_rate"] = (waiters.calls - calls) / elapsed
    out["steady_cpu"] = ((_cpu_seconds(pid) or 0.0) - cpu2) / elapsed
    out["rss_end"], out["redis_end"] = _rss_mb(pid), _redis_sockets(pid)
    out["calls"], out["errors"] = waiters.calls, waiters.errors
    waiters.stop = True
    process.kill()  # (a SIGTERM would wait for the open waits to end)
    await asyncio.wait_for(running, 30)
    return out


def run() -> list[Row]:
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    embedded = not settings.REDIS_URL
    old_name = connection.settings_dict["NAME"]
    if not settings.DATABASE_IS_MYSQL:  # a file: the server process must see the test database
        path = os.path.join(tempfile.mkdtemp(prefix="aiw-bench-waits-"), "test.sqlite3")
        connection.settings_dict.setdefault("TEST", {})["NAME"] = path
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    s = connection.settings_dict
    if settings.DATABASE_IS_MYSQL:
        auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
        url = f"mysql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 3306}/{test_name}"
    else:
        url = f"sqlite:///{test_name}"
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", "DEBUG": "false"}
    env.setdefault("SECRET_KEY", "bench-waits-not-a-secret")
    try:
        data = _setup(WAITERS)
        log = open(LOG, "w")  # noqa: SIM115 (closed below; the server writes to it meanwhile)
        process, base = _start(env, embedded, log)
        try:
            out = asyncio.run(_scenario(process, base, data, embedded))
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
            log.close()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return _rows(out, embedded)


def _rows(out: dict[str, Any], embedded: bool) -> list[Row]:
    n = f"{WAITERS:,} waits"
    where = "daphne, in-memory layer" if embedded else "mcp_server, Redis"
    hb0 = _pct(out["hb0"], 0.95)
    rows = []
    for key, when in (("hb_quiet", "quiet"), ("hb", "steady")):
        hb = _pct(out[key], 0.95)
        open_now = out["open_quiet" if key == "hb_quiet" else "open_steady"]
        rows.append(
            Row(
                f"heartbeat p95, {n} ({when}: {open_now} open; {where})",
                f"{hb:.1f} ms",
                f"{hb0:.1f} ms with 0 waits",
                ratio(hb, hb0),
                f"< 100 ms: {'met' if hb < 100 else 'NOT met'}",
            )
        )
    answers, lost = out["answers"], out["lost"]
    layer = _pct(out["layer"], 0.95)
    p95 = _pct(answers, 0.95) if answers else float("inf")
    rows.append(
        Row(
            f"answer reaches its waiter p50/p95, {len(answers) + lost} answers, {n} (steady)",
            (f"{_pct(answers, 0.5):.1f}/{p95:.1f} ms" if answers else "none arrived")
            + (f", {lost} LOST" if lost else ""),
            f"{layer:.2f} ms bare group_send->receive p95",
            ratio(p95, layer) if answers else "n/a",
            f"< 250 ms: {'met' if p95 < 250 and not lost else 'NOT met'}",
        )
    )
    if not embedded:
        peak = max(out["redis"], out["redis_end"])
        rows.append(
            Row(
                f"server's Redis connections, {n} (quiet / steady)",
                f"{out['redis']} / {out['redis_end']}",
                f"{out['redis0']} with 0 waits",
                ratio(peak, out["redis0"] or 1),
                f"small constant: {'met' if peak <= 10 else 'NOT met'}",
            )
        )
    per_wait = (out["rss"] - out["rss0"]) * 1024 / WAITERS
    rows.append(
        Row(
            f"server RSS, {n} open (quiet / steady)",
            f"{out['rss']:.0f} / {out['rss_end']:.0f} MB ({per_wait:.0f} KB a wait)",
            f"{out['rss0']:.0f} MB with 0 waits",
            ratio(out["rss"], out["rss0"]),
            "info",
        )
    )
    errors = out["errors"]
    rows.append(
        Row(
            f"server CPU, {n}: quiet (no call) / steady",
            f"{out['idle_cpu'] * 100:.1f}% / {out['steady_cpu'] * 100:.0f}% of a core",
            f"steady: {out['steady_rate']:.0f} calls/s; {out['cpu_per_call']:.1f} ms a call",
            "",
            "info" + (f"; {len(errors)} ERRORS: {errors[:2]}" if errors else ""),
        )
    )
    return rows
