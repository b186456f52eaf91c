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

Bench code only: it skips the product's checks, events and answer shaping.
"""

import argparse
import asyncio
import os
import threading
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

from agents.services import hash_token  # noqa: E402
from mcpbridge.server import http_app  # noqa: E402
from tests.bench.bench_claims import _raw_claim  # noqa: E402

_local = threading.local()


def _cursor() -> Any:
    """One connection per worker thread, set up as the raw-SQL bench's workers set theirs."""
    if not hasattr(_local, "db"):
        s = settings.DATABASES["default"]
        _local.db = MySQLdb.connect(
            host=s["HOST"] or "127.0.0.1", port=int(s["PORT"] or 3306), user=s["USER"],
            password=s["PASSWORD"], database=s["NAME"], charset="utf8mb4",
        )  # fmt: skip
        _local.db.autocommit(False)
        _local.db.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    return _local.db.cursor()


def _known(token: str) -> bool:
    cur = _cursor()
    cur.execute(
        "SELECT id FROM agents_agent WHERE token_hash = %s AND revoked_at IS NULL",
        (hash_token(token),),
    )
    found = cur.fetchone() is not None
    cur.connection.commit()
    return found


def _claim(token: str, project: str) -> int | None:
    for _ in range(3):
        try:
            return _raw_claim(_cursor(), hash_token(token), project)
        except MySQLdb.OperationalError as exc:
            _cursor().connection.rollback()
            if exc.args[0] != 1213:  # only a deadlock is retried, as the service does
                raise
    raise RuntimeError("deadlocked three times")


class _Verifier:
    async def verify_token(self, token: str) -> AccessToken | None:
        known = await asyncio.get_running_loop().run_in_executor(None, _known, token)
        return AccessToken(token=token, client_id="bench", scopes=["agent"]) if known else None


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
