"""Claims over MCP HTTP (1, 8, 32 agents) beside the same claim as raw SQL, on MariaDB.

The MCP server is `manage.py mcp_server --transport http` in a subprocess, on a throwaway test
database. Every MCP call is a real claim by a fresh agent: each client rotates through agent
tokens (the server is stateless, so a call's bearer token decides who it is), because an agent
that holds a task gets that task back instead of a new one.

The limit is the same claim as raw SQL with mysqlclient, one connection per worker and fresh
agents too: statement for statement what one get_next_task runs (authenticate, heartbeat,
project, the claim transaction with SKIP LOCKED, the context read), so the ratio is the cost of
everything that is not the database — MCP, HTTP, Django, the live broadcast. The bench counts
the statements of both and prints them. Every worker runs until nothing is left, so every claim
of the run is timed.
"""

import asyncio
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from django.conf import settings
from django.db import connection

from tasks import claim_queries
from tests.bench.table import Row, ratio

CLAIMS = 240
AGENT_COUNTS = (1, 8, 32)
FLOOR_AGENTS = 8  # the MCP-without-Django yardstick runs at the target's agent count
# MCP server processes (`mcp_server --workers`). One by default: on the 2-core bench machine the
# clients, MariaDB and the server already fill both cores, so 2 workers gave 87 against 81
# claims/s at 8 agents. (A lone agent's claims were ~40 ms slower with 2 workers until
# mcpbridge/http_protocol.py turned Nagle's algorithm off: 21.5 ms p50 against 64 ms.)
SERVER_WORKERS = int(os.environ.get("BENCH_MCP_WORKERS", "1"))
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


def _raw_claim(cur: Any, token_hash: str, project_slug: str) -> int | None:
    """One get_next_task as plain SQL: the statements the MCP path runs, in its order, for a
    fresh agent (the bench's case): authenticate, heartbeat, the project, then the claim
    transaction (own task, candidates, lock, readiness, task, agent, event) and the context
    read (questions, feedback). The claim's own statements are the service's SQL itself."""
    sql = claim_queries.statements("mysql")
    ready = claim_queries.ready_params()
    active = ("in_progress", "needs_input")
    cur.execute(
        "SELECT a.id, a.name, a.project_id, a.revoked_at, p.id FROM agents_agent a "
        "LEFT JOIN projects_project p ON p.id = a.project_id WHERE a.token_hash = %s",
        (token_hash,),
    )
    agent_id, agent_name, *_ = cur.fetchone()
    cur.execute(
        "SELECT id FROM tasks_task WHERE assigned_agent_id = %s AND state IN (%s, %s)",
        (agent_id, *active),
    )
    cur.execute("UPDATE agents_agent SET last_heartbeat_at = NOW(6) WHERE id = %s", (agent_id,))
    cur.connection.commit()
    cur.execute("SELECT * FROM projects_project WHERE slug = %s LIMIT 1", (project_slug,))
    project_id = cur.fetchone()[0]
    cur.execute(
        "SELECT id FROM tasks_task WHERE project_id = %s AND assigned_agent_id = %s "
        "AND state IN (%s, %s) ORDER BY id LIMIT 1",
        (project_id, agent_id, *active),
    )
    tried: list[int] = []
    while True:
        query = sql["candidates"] + " AND c.project_id = %s"
        params: list[Any] = ["backlog", *ready, project_id]
        if tried:
            query += f" AND c.id NOT IN ({', '.join(['%s'] * len(tried))})"
            params += tried
        cur.execute(query + sql["order"], [*params, 8])
        ids = [row[0] for row in cur.fetchall()]
        if not ids:
            cur.connection.rollback()
            return None
        for pk in ids:
            cur.execute(sql["lock"], (pk, "backlog"))
            if cur.fetchone() is None:
                continue
            cur.execute(sql["ready"], [pk, *ready])
            if cur.fetchone() is None:
                continue
            cur.execute(
                "UPDATE tasks_task SET state = 'in_progress', state_changed_at = NOW(6), "
                "updated_at = NOW(6), assigned_agent_id = %s, attempt_count = attempt_count + 1, "
                "lease_expires_at = NOW(6) + INTERVAL 10 MINUTE WHERE id = %s",
                (agent_id, pk),
            )
            cur.execute(
                "UPDATE agents_agent SET current_task_id = %s, status = 'busy' WHERE id = %s "
                "AND (current_task_id IS NULL OR current_task_id = %s)",
                (pk, agent_id, pk),
            )
            cur.execute(
                "INSERT INTO tasks_taskevent (task_id, kind, from_state, to_state, actor_kind, "
                "actor_agent_id, message, payload, created_at) VALUES (%s, 'status_changed', "
                "'backlog', 'in_progress', 'agent', %s, %s, %s, NOW(6))",
                (pk, agent_id, f"Claimed by {agent_name} (attempt 1)", '{"attempt": 1}'),
            )
            cur.connection.commit()
            cur.execute(
                "SELECT q.*, u.* FROM tasks_taskquestion q LEFT JOIN auth_user u "
                "ON u.id = q.answered_by_id WHERE q.task_id = %s ORDER BY q.asked_at, q.id",
                (pk,),
            )
            cur.fetchall()
            cur.execute(
                "SELECT * FROM tasks_taskfeedback WHERE task_id = %s AND seen_at IS NULL "
                "ORDER BY created_at, id",
                (pk,),
            )
            cur.fetchall()
            return pk
        tried += ids


class _CountingCursor:
    """A mysqlclient cursor that counts the statements it runs (BEGIN/COMMIT are not)."""

    def __init__(self, cursor: Any) -> None:
        self.cursor, self.connection, self.count = cursor, cursor.connection, 0

    def execute(self, query: str, params: Any = None) -> Any:
        self.count += 1
        return self.cursor.execute(query, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)


def _statement_counts(project_slug: str, tokens: list[str]) -> tuple[int, int]:
    """(statements of one claim through the MCP tool's code path, of one raw SQL claim)."""
    import MySQLdb
    from django.test.utils import CaptureQueriesContext

    from agents.services import agent_authenticate, hash_token
    from mcpbridge.auth import _authenticated_call
    from mcpbridge.tools import _next_task

    connection.queries_log.clear()  # (it keeps 9,000 statements: full, it would count none)
    with CaptureQueriesContext(connection) as queries:
        verified = agent_authenticate(tokens[0])  # the HTTP token check, then the tool
        _authenticated_call(tokens[0], _next_task, {"project": project_slug}, verified)
    ours = [q for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    s = connection.settings_dict
    db = MySQLdb.connect(
        host=s["HOST"] or "127.0.0.1", port=int(s["PORT"] or 3306), user=s["USER"],
        password=s["PASSWORD"], database=s["NAME"], charset="utf8mb4",
    )  # fmt: skip
    db.autocommit(False)
    cur = _CountingCursor(db.cursor())
    assert _raw_claim(cur, hash_token(tokens[1]), project_slug) is not None
    db.close()
    return len(ours), cur.count


def _raw_sql(workers: int, project_slug: str, tokens: list[str]) -> tuple[float, list[float]]:
    import MySQLdb

    from agents.services import hash_token

    s = connection.settings_dict
    latencies: list[float] = []
    lock = threading.Lock()
    queues = [[hash_token(t) for t in tokens[i::workers]] for i in range(workers)]
    go = threading.Barrier(workers + 1)

    def worker(queue: list[str]) -> None:
        db = MySQLdb.connect(
            host=s["HOST"] or "127.0.0.1",
            port=int(s["PORT"] or 3306),
            user=s["USER"],
            password=s["PASSWORD"],
            database=s["NAME"],
            charset="utf8mb4",
        )
        db.autocommit(False)
        cur = db.cursor()
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        go.wait()
        for token_hash in queue:
            started = time.perf_counter()
            try:
                claimed = _raw_claim(cur, token_hash, project_slug)
            except MySQLdb.OperationalError as exc:
                db.rollback()
                if exc.args[0] == 1213:  # a deadlock: the service retries too
                    continue
                raise
            if claimed is None:
                break
            with lock:
                latencies.append(time.perf_counter() - started)
        db.close()

    threads = [threading.Thread(target=worker, args=(q,)) for q in queues]
    for t in threads:
        t.start()
    go.wait()
    started = time.perf_counter()
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
    claimed: list[int] = []
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
                claimed.append(result.structured_content["task"]["id"])
            finished.append(time.perf_counter())

    async def timer() -> float:
        await go.wait()
        return time.perf_counter()

    started = asyncio.ensure_future(timer())
    await asyncio.gather(*(worker(q) for q in queues))
    return len(latencies) / (max(finished) - started.result()), latencies, claimed


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) used so far by a process and its children, from /proc (Linux);
    None elsewhere. With `--workers N`, uvicorn's workers are the server's children."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        # The fields after the command name, which is in parentheses.
                        fields = f.read().rpartition(")")[2].split()
                except OSError:
                    continue  # it ended while we looked
                stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    except OSError:
        return None
    if pid not in stats:
        return None
    family = {pid}
    for _ in range(3):  # server -> workers -> their helpers
        family |= {p for p, (ppid, _) in stats.items() if ppid in family}
    return sum(stats[p][1] for p in family) / tick


def _cpu_per_claim(pid: int, claims: Any) -> tuple[float, list[float], float | None, list[int]]:
    """Runs `claims` (an `_mcp(...)` coroutine) and adds the server's CPU ms per claim; last,
    the task ids the agents were given (each exactly once, or a task was claimed twice)."""
    before = _cpu_seconds(pid)
    rate, latencies, claimed = asyncio.run(claims)
    after = _cpu_seconds(pid)
    if before is None or after is None or not latencies:
        return rate, latencies, None, claimed
    return rate, latencies, (after - before) * 1000 / len(latencies), claimed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(
    env: dict[str, str], floor: bool = False, noop: bool = False
) -> tuple[subprocess.Popen, str]:
    """The product's MCP server, or with `floor` the SDK serving the raw-SQL claim, or with
    `noop` the SDK serving a no-op heartbeat (tests/bench/mcp_floor_server.py)."""
    import httpx2

    port = _free_port()
    if floor or noop:
        command = [sys.executable, "-m", "tests.bench.mcp_floor_server", "--port", str(port)]
        command += ["--noop"] if noop else []
    else:
        command = [sys.executable, MANAGE, "mcp_server", "--transport", "http", "--port", str(port)]
        command += ["--workers", str(SERVER_WORKERS)]
    log = os.path.join(tempfile.gettempdir(), f"bench_server_{port}.log")  # its stderr
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            command, env=env, cwd=str(settings.BASE_DIR), stdout=subprocess.DEVNULL, stderr=stderr
        )
    print(f"server {' '.join(command[1:3])} on port {port}: log {log}", file=sys.stderr)
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


def _floor_rows(
    floor: subprocess.Popen, url: str, workers: int, ours: float, raw_rate: float, cpu: float | None
) -> list[Row]:
    """The MCP SDK serving the raw-SQL claim (tests/bench/mcp_floor_server.py), same client:
    what MCP and HTTP cost without Django, so the gap to the product's row is Django's. Then
    both servers' CPU per claim: one server process runs Python on one core at a time (the
    GIL), so 1,000 ms / (CPU ms per claim) is the most claims a second it can serve."""
    from projects.models import Project

    project = Project.objects.get(pk=_make_tasks(CLAIMS))
    tokens = _agents(CLAIMS + workers)
    rate, lat, floor_cpu, _ = _cpu_per_claim(floor.pid, _mcp(url, workers, project.slug, tokens))
    rows = [
        Row(
            f"  MCP SDK serving the raw-SQL claim (no Django), {workers} agents",
            f"{rate:.0f}/s, p95 {_pct(lat, 0.95):.1f} ms",
            f"{raw_rate:.0f}/s raw SQL",
            ratio(rate, raw_rate),
            f"info: AiWorker's server does {ratio(ours, rate)} of it",
        )
    ]
    if cpu is not None and floor_cpu is not None:
        rows.append(
            Row(
                f"  server CPU per claim, {workers} agents (/proc)",
                f"{cpu:.1f} ms: <= {1000 / cpu:.0f}/s a process",
                f"{floor_cpu:.1f} ms: <= {1000 / floor_cpu:.0f}/s, the SDK without Django",
                ratio(cpu, floor_cpu),
                f"<= 2.00x: {'met' if cpu <= 2 * floor_cpu else 'NOT met'}",
            )
        )
    return rows


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
        "DEBUG": "false",  # as deployed: no per-query SQL log
    }
    if s["PASSWORD"]:
        env["DATABASE_URL"] = env["DATABASE_URL"].replace("@", f":{s['PASSWORD']}@", 1)
    process, url = _start_server(env)
    floor_process, floor_url = _start_server(env, floor=True)
    rows: list[Row] = []
    claims, duplicates = 0, 0
    try:
        ours, raw = _statement_counts(Project.objects.get(pk=_make_tasks(2)).slug, _agents(2))
        rows.append(
            Row(
                "SQL statements in one claim (BEGIN/COMMIT not counted)",
                f"{ours} through the MCP tool's code",
                f"{raw} raw SQL",
                ratio(ours, raw),
                "the same claim: " + ("yes" if ours == raw else "NO, counts differ"),
            )
        )
        for workers in AGENT_COUNTS:
            project = Project.objects.get(pk=_make_tasks(CLAIMS))
            raw_rate, raw_lat = _raw_sql(workers, project.slug, _agents(CLAIMS + workers))
            project = Project.objects.get(pk=_make_tasks(CLAIMS))
            tokens = _agents(CLAIMS + workers)
            rate, lat, cpu, ids = _cpu_per_claim(
                process.pid, _mcp(url, workers, project.slug, tokens)
            )
            claims, duplicates = claims + len(ids), duplicates + len(ids) - len(set(ids))
            met = rate >= 0.4 * raw_rate
            target = ">= 0.40x" + (f": {'met' if met else 'NOT met'}" if workers == 8 else "")
            rows.append(
                Row(
                    f"claims/s over MCP HTTP ({SERVER_WORKERS} server procs), {workers} agent(s)",
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
                    (f"p95 < 50 ms: {'met' if p95 < 50 else 'NOT met'}" if workers >= 8 else ""),
                )
            )
            if workers == FLOOR_AGENTS:
                rows += _floor_rows(floor_process, floor_url, workers, rate, raw_rate, cpu)
        rows.append(
            Row(
                f"tasks claimed twice, all MCP runs ({', '.join(map(str, AGENT_COUNTS))} agents)",
                f"{duplicates} of {claims} claims",
                "0",
                "",
                f"0 duplicates: {'met' if duplicates == 0 else 'NOT met'}",
            )
        )
    finally:
        for server in (process, floor_process):
            server.terminate()
            server.wait(timeout=10)
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return rows
