"""Claims over MCP HTTP (1, 8, 32 agents) beside the same claim as raw SQL, on MariaDB.

The MCP server is `manage.py mcp_server --transport http` in a subprocess, on a throwaway test
database. Every MCP call is a real claim by a fresh agent: each client rotates through agent
tokens (the server is stateless, so a call's bearer token decides who it is), because an agent
that holds a task gets that task back instead of a new one. Raw SQL is the claim alone, in
the service's way (candidates read in claim order, one row locked by primary key with SKIP
LOCKED), then UPDATE and COMMIT, one connection per worker. Every worker runs until nothing is
left, so every claim of the run is timed.
"""

import asyncio
import logging
import os
import socket
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.db import connection

from tests.bench.table import Row, ratio

CLAIMS = 240
AGENT_COUNTS = (1, 8, 32)
MANAGE = os.path.join(settings.BASE_DIR, "manage.py")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def _make_tasks(count: int) -> int:
    from projects.models import Project
    from tasks.models import Task

    project = Project.objects.create(name=f"bench {time.time()}", slug=f"b{time.time_ns()}")
    Task.objects.bulk_create(
        Task(project=project, title=f"T{i}", priority=i % 4, position=i) for i in range(count)
    )
    return project.pk


def _raw_sql(workers: int) -> tuple[float, list[float]]:
    import MySQLdb

    project_id = _make_tasks(CLAIMS)
    s = connection.settings_dict
    latencies: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        db = MySQLdb.connect(
            host=s["HOST"] or "127.0.0.1",
            port=int(s["PORT"] or 3306),
            user=s["USER"],
            password=s["PASSWORD"],
            database=s["NAME"],
        )
        db.autocommit(False)
        cur = db.cursor()
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        while True:
            started = time.perf_counter()
            try:
                # The service's claim (tasks.services._lock_first_claimable): candidates in
                # claim order without locks, then one row locked by primary key. A single
                # ORDER BY … LIMIT 1 FOR UPDATE SKIP LOCKED sorts and locks every backlog row,
                # so the other workers would find nothing and stop.
                cur.execute(
                    "SELECT id FROM tasks_task WHERE project_id=%s AND state='backlog' "
                    "ORDER BY priority DESC, position, created_at, id LIMIT 8",
                    (project_id,),
                )
                candidates = cur.fetchall()
                if not candidates:
                    db.rollback()
                    break
                row = None
                for (candidate,) in candidates:
                    cur.execute(
                        "SELECT id FROM tasks_task WHERE id=%s AND state='backlog' "
                        "FOR UPDATE SKIP LOCKED",
                        (candidate,),
                    )
                    row = cur.fetchone()
                    if row is not None:
                        break
                if row is None:
                    db.rollback()
                    continue
                cur.execute(
                    "UPDATE tasks_task SET state='in_progress', attempt_count=attempt_count+1, "
                    "lease_expires_at=NOW() + INTERVAL 10 MINUTE WHERE id=%s",
                    row,
                )
                db.commit()
            except MySQLdb.OperationalError as exc:
                db.rollback()
                if exc.args[0] == 1213:
                    continue
                raise
            with lock:
                latencies.append(time.perf_counter() - started)
        db.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.perf_counter() - started), latencies


def _agents(count: int) -> list[str]:
    from agents.models import Agent, AgentStatus
    from agents.services import agent_create

    tokens = [agent_create(name=f"bench-{time.time_ns()}-{i}")[1] for i in range(count)]
    Agent.objects.filter(name__startswith="bench-").update(status=AgentStatus.IDLE)
    return tokens


async def _mcp(url: str, workers: int, project_slug: str, tokens: list[str]) -> tuple:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    latencies: list[float] = []
    queues = [tokens[i::workers] for i in range(workers)]
    connected = 0
    go = asyncio.Event()
    finished: list[float] = []

    async def worker(queue: list[str]) -> None:
        nonlocal connected
        headers = {"Authorization": f"Bearer {queue[0]}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            connected += 1
            if connected == workers:
                go.set()
            await go.wait()  # time the claims only, not the connection set-up
            for token in queue:
                http.headers["Authorization"] = f"Bearer {token}"
                started = time.perf_counter()
                result = await client.call_tool("get_next_task", {"project": project_slug})
                elapsed = time.perf_counter() - started
                if result.is_error:
                    raise RuntimeError(result.content)
                if result.structured_content["task"] is None:
                    break
                latencies.append(elapsed)
            finished.append(time.perf_counter())

    async def timer() -> float:
        await go.wait()
        return time.perf_counter()

    started = asyncio.ensure_future(timer())
    await asyncio.gather(*(worker(q) for q in queues))
    return len(latencies) / (max(finished) - started.result()), latencies


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    import httpx2

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, MANAGE, "mcp_server", "--transport", "http", "--port", str(port)],
        env=env,
        cwd=str(settings.BASE_DIR),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx2.post(url, json={}, timeout=2)  # 401 once it listens
            return process, url
        except httpx2.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("mcp_server did not start")


def run() -> list[Row]:
    if not settings.DATABASE_IS_MYSQL:
        print("bench_claims: skipped, needs DATABASE_URL=mysql://… (MariaDB)", file=sys.stderr)
        return []
    from projects.models import Project

    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per request otherwise
    old_name = connection.settings_dict["NAME"]
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    s = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"mysql://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 3306}/"
        f"{test_name}",
        "LOG_LEVEL": "WARNING",
    }
    if s["PASSWORD"]:
        env["DATABASE_URL"] = env["DATABASE_URL"].replace("@", f":{s['PASSWORD']}@", 1)
    process, url = _start_server(env)
    rows: list[Row] = []
    try:
        for workers in AGENT_COUNTS:
            raw_rate, raw_lat = _raw_sql(workers)
            project = Project.objects.get(pk=_make_tasks(CLAIMS))
            tokens = _agents(CLAIMS + workers)
            rate, lat = asyncio.run(_mcp(url, workers, project.slug, tokens))
            met = rate >= 0.4 * raw_rate
            target = ">= 0.40x" + (f": {'met' if met else 'NOT met'}" if workers == 8 else "")
            rows.append(
                Row(
                    f"claims/s over MCP HTTP, {workers} agent(s)",
                    f"{rate:.0f}/s",
                    f"{raw_rate:.0f}/s raw SQL",
                    ratio(rate, raw_rate),
                    target if workers == 8 else "",
                )
            )
            p95 = _pct(lat, 0.95)
            rows.append(
                Row(
                    f"claim latency p50/p95, {workers} agent(s)",
                    f"{_pct(lat, 0.5):.1f}/{p95:.1f} ms",
                    f"{_pct(raw_lat, 0.5):.1f}/{_pct(raw_lat, 0.95):.1f} ms raw SQL",
                    ratio(p95, _pct(raw_lat, 0.95)),
                    (f"p95 < 50 ms: {'met' if p95 < 50 else 'NOT met'}" if workers == 8 else ""),
                )
            )
    finally:
        process.terminate()
        process.wait(timeout=10)
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return rows
