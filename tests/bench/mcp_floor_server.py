"""The claims bench's second yardstick: the MCP SDK serving the raw-SQL claim.

`python -m tests.bench.mcp_floor_server --port N` runs an MCP server built exactly like
AiWorker's (`mcpbridge.server.http_app`: streamable HTTP, stateless, JSON answers, a bearer
token checked before the tool) whose `get_next_task` runs `bench_claims._raw_claim` — the same
statements as the product's claim, as plain mysqlclient calls in a worker thread — instead of
the Django services. So between this and raw SQL lies the cost of MCP and HTTP alone, and
between this and the real server the cost of Django (ORM, transactions, live events).

With `--noop` it is the heartbeat bench's yardstick instead: the same server whose bearer
check accepts any token and whose `heartbeat` tool answers a constant of the product's shape,
touching no database. What a beat costs the SDK and HTTP alone.

Without `--noop` it also serves `heartbeat` as the product's statements in plain driver calls
(mysqlclient or sqlite3), with the product's two thread hops: the bearer check's token read in
one, the held tasks, the two UPDATEs and the CLI-call sum in the other. Between the no-op and
this lies what the database work and the hops cost; between this and the product, Django.

Bench code only: it skips the product's checks, events and answer shaping.
"""

import argparse
import asyncio
import os
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiworker.settings")

import django

django.setup()

import anyio  # noqa: E402
import MySQLdb  # noqa: E402
import uvicorn  # noqa: E402
from django.conf import settings  # noqa: E402
from mcp.server.auth.middleware.auth_context import get_access_token  # noqa: E402
from mcp.server.auth.provider import AccessToken  # noqa: E402
from mcp.server.auth.settings import AuthSettings  # noqa: E402
from mcp.server.mcpserver import MCPServer  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402

from agents.services import hash_token  # noqa: E402
from mcpbridge.server import http_app  # noqa: E402
from tests.bench.bench_claims import _raw_claim  # noqa: E402

_local = threading.local()


def _cursor() -> Any:
    """One connection per worker thread, set up as the raw-SQL bench's workers set theirs."""
    if not hasattr(_local, "db"):
        s = settings.DATABASES["default"]
        if settings.DATABASE_IS_MYSQL:
            _local.db = MySQLdb.connect(
                host=s["HOST"] or "127.0.0.1", port=int(s["PORT"] or 3306), user=s["USER"],
                password=s["PASSWORD"], database=s["NAME"], charset="utf8mb4",
            )  # fmt: skip
            _local.db.autocommit(False)
            _local.db.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        else:  # the product's SQLite settings: a busy timeout, autocommit
            _local.db = sqlite3.connect(s["NAME"], timeout=20, isolation_level=None)
    return _local.db.cursor()


def _sql(statement: str) -> str:
    return statement if settings.DATABASE_IS_MYSQL else statement.replace("%s", "?")


def _known(token: str) -> tuple[Any, ...] | None:
    """The agent a token belongs to: (id, name, kind, status, status message), or None."""
    cur = _cursor()
    cur.execute(
        _sql(
            "SELECT id, name, kind, status, status_message FROM agents_agent"
            " WHERE token_hash = %s AND revoked_at IS NULL"
        ),
        (hash_token(token),),
    )
    agent = cur.fetchone()
    cur.connection.commit()
    return agent


_ACTIVE = ("in_progress", "needs_input")
_HELD = "SELECT id FROM tasks_task WHERE assigned_agent_id = %s AND state IN (%s, %s) ORDER BY id"
_BEAT = "UPDATE agents_agent SET last_heartbeat_at = %s WHERE id = %s"
_RENEW = (
    "UPDATE tasks_task SET lease_expires_at = %s"
    " WHERE assigned_agent_id = %s AND state IN (%s, %s) AND id IN "
)
_CLI_CALLS = "SELECT SUM(calls) FROM agents_agentmcpcall WHERE agent_id = %s"


def _raw_heartbeat(agent_id: int) -> tuple[int | None, str | None, int]:
    """The product's heartbeat statements (agents.services.agent_heartbeat, cli_calls), each
    committing by itself: (held task, its new lease, CLI calls)."""
    cur = _cursor()
    now = datetime.now(UTC).replace(tzinfo=None)
    stamp = now.isoformat(sep=" ")
    cur.execute(_sql(_HELD), (agent_id, *_ACTIVE))
    held = [row[0] for row in cur.fetchall()]
    cur.execute(_sql(_BEAT), (stamp, agent_id))
    cur.connection.commit()
    lease = None
    if held:
        lease = (now + settings.TASK_LEASE_DURATION).isoformat(sep=" ")
        marks = ", ".join(["%s"] * len(held))
        cur.execute(_sql(f"{_RENEW}({marks})"), (lease, agent_id, *_ACTIVE, *held))
        cur.connection.commit()
    cur.execute(_sql(_CLI_CALLS), (agent_id,))
    calls = int(cur.fetchone()[0] or 0)
    cur.connection.commit()
    return (held[0] if held else None), lease, calls


def _claim(token: str, project: str) -> int | None:
    for _ in range(3):
        try:
            return _raw_claim(_cursor(), hash_token(token), project)
        except MySQLdb.OperationalError as exc:
            _cursor().connection.rollback()
            if exc.args[0] != 1213:  # only a deadlock is retried, as the service does
                raise
    raise RuntimeError("deadlocked three times")


class _AgentToken(AccessToken):
    """Carries the row the bearer check read to the tool, as the product's token does."""

    _agent: tuple[Any, ...] = PrivateAttr(default=())


class _Verifier:
    async def verify_token(self, token: str) -> AccessToken | None:
        agent = await asyncio.get_running_loop().run_in_executor(None, _known, token)
        if agent is None:
            return None
        access = _AgentToken(token=token, client_id=f"agent-{agent[0]}", scopes=["agent"])
        access._agent = agent
        return access


def build() -> MCPServer:
    server = MCPServer(
        "aiworker-floor",
        auth=AuthSettings(
            issuer_url="http://localhost",  # type: ignore[arg-type]
            resource_server_url=None,
            required_scopes=["agent"],
        ),
        token_verifier=_Verifier(),
    )

    @server.tool()
    async def get_next_task(project: str) -> dict[str, Any]:
        """Claim the next task of `project` with the raw-SQL claim."""
        access = get_access_token()
        assert access is not None
        loop = asyncio.get_running_loop()
        pk = await loop.run_in_executor(None, _claim, access.token, project)
        return {"task": None if pk is None else {"id": pk}}

    @server.tool()
    async def heartbeat(status: str | None = None, message: str | None = None) -> dict[str, Any]:
        """Renew the caller's heartbeat and lease with the product's statements, raw."""
        access = get_access_token()
        assert isinstance(access, _AgentToken)
        pk, name, kind, current, _ = access._agent
        loop = asyncio.get_running_loop()
        task_id, lease, calls = await loop.run_in_executor(None, _raw_heartbeat, pk)
        return {
            "agent": name,
            "kind": kind,
            "status": current,
            "current_task_id": task_id,
            "lease_expires_at": lease,
            "cli_calls": calls,
        }

    return server


class _AnyToken:
    async def verify_token(self, token: str) -> AccessToken | None:
        return AccessToken(token=token, client_id="bench", scopes=["agent"]) if token else None


def build_noop() -> MCPServer:
    server = MCPServer(
        "aiworker-noop",
        auth=AuthSettings(
            issuer_url="http://localhost",  # type: ignore[arg-type]
            resource_server_url=None,
            required_scopes=["agent"],
        ),
        token_verifier=_AnyToken(),
    )

    @server.tool()
    async def heartbeat(status: str | None = None, message: str | None = None) -> dict[str, Any]:
        """Answer what the product's heartbeat answers, from constants."""
        return {
            "agent": "bench",
            "kind": "claude-code",
            "status": status or "busy",
            "current_task_id": 1,
            "lease_expires_at": "2026-01-01T00:00:00+00:00",
            "cli_calls": 0,
        }

    return server


def main() -> None:
    from mcpbridge.http_protocol import ANYIO_OPTIONS, uvicorn_options

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--noop", action="store_true")
    args = parser.parse_args()
    # The product's transport settings (mcpbridge/management/commands/mcp_server.py).
    config = uvicorn.Config(
        http_app(build_noop() if args.noop else build()),
        host="127.0.0.1",
        port=args.port,
        **uvicorn_options(),
    )
    anyio.run(uvicorn.Server(config).serve, backend_options=ANYIO_OPTIONS)


if __name__ == "__main__":
    main()
