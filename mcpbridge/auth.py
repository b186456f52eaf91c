"""Who is calling: the agent's bearer token on HTTP, AIWORKER_AGENT_TOKEN on stdio.

On HTTP the SDK's bearer middleware asks `AgentTokenVerifier` before any MCP message is read,
so an unknown or revoked token gets a 401 and no tool runs. The server is stateless, so that
check runs on every request: a token revoked between two calls stops working at once. The tool
of that same request uses the agent the verifier loaded (one lookup per request, not two). On
stdio there is no middleware: the tool authenticates the token from the environment itself.

Database calls run in the loop's thread pool (a few long-lived threads), and each thread keeps
its connection between calls (see `_reuse_connections`): opening a MariaDB connection for every
call cost more than the claim itself.
"""

import asyncio
import contextvars
import functools
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import OperationalError, connections
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import PrivateAttr

from agents.mcp_calls import RUNNER_CLIENT, agent_record_mcp_call
from agents.models import Agent
from agents.services import agent_authenticate, agent_touch
from aiworker import errors, live

logger = logging.getLogger(__name__)
TOKEN_ENV = "AIWORKER_AGENT_TOKEN"
DEADLOCK_RETRIES = 3
SCOPE = "agent"
# How long a pooled thread keeps its database connection; errors or a broken link end it sooner.
CONNECTION_REUSE_SECONDS = 300.0
T = TypeVar("T")
# The tool being called (set by mcpbridge.server for each call), for the record of CLI calls.
current_tool: contextvars.ContextVar[str] = contextvars.ContextVar("current_tool", default="")

# What an agent should do about each kind of refusal; appended to the service's message.
HINTS = {
    errors.NotFound: "Check the id: get_context shows your task, list_tasks a project's tasks.",
    errors.PermissionDenied: "You may act only on tasks assigned to you (see get_context).",
    errors.TransitionNotAllowed: "Pick one of the allowed states, or release_task.",
    errors.InvalidInput: "Fix the argument and call again.",
    errors.NotConfigured: "This integration is off on this server; report it in log_progress "
    "and carry on without it, or ask an operator.",
    errors.Conflict: "The task changed meanwhile: call get_context and decide again.",
}


def explain(exc: errors.DomainError) -> str:
    """The text of the MCP tool error: what was wrong and what to do."""
    for kind, hint in HINTS.items():
        if isinstance(exc, kind):
            return f"[{exc.code}] {exc.message} {hint}"
    return f"[{exc.code}] {exc.message}"


class AgentAccessToken(AccessToken):
    """The SDK's access token, carrying the agent the verifier loaded for this request."""

    _agent: Agent | None = PrivateAttr(default=None)

    @property
    def agent(self) -> Agent | None:
        return self._agent


class AgentTokenVerifier:
    """The SDK's TokenVerifier: a bearer token is valid when it belongs to an unrevoked agent."""

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            agent = await _db(agent_authenticate, token)
        except errors.PermissionDenied:
            return None
        access = AgentAccessToken(token=token, client_id=f"agent-{agent.pk}", scopes=[SCOPE])
        access._agent = agent
        return access


def _reuse_connections() -> None:
    """Keep this thread's connection unless it is old, broken, or left mid-transaction.

    Django's request cycle closes connections after each request when CONN_MAX_AGE is 0 (the
    web default, right for daphne's unbounded threads). Here the threads are the event loop's
    small fixed pool, so one open connection per thread is bounded and is reused instead.
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.in_atomic_block or conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"]:
            conn.close()  # a failed call left a transaction behind: start clean
            continue
        if conn.errors_occurred:
            if not conn.is_usable():
                conn.close()
                continue
            conn.errors_occurred = False
        # close_at is "opened + CONN_MAX_AGE" (None: kept for ever, as configured).
        max_age = conn.settings_dict["CONN_MAX_AGE"] or 0
        if conn.close_at is not None and time.monotonic() - (conn.close_at - max_age) > max(
            max_age, CONNECTION_REUSE_SECONDS
        ):
            conn.close()


def _call_in_pooled_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    _reuse_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        _reuse_connections()


async def _db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn` in the loop's thread pool, with this task's context variables.

    Any pooled thread will do: calls of different agents run on parallel connections (the claim
    relies on row locks, not on one thread), and each call is one unit of work with its own
    transactions. What asgiref's `sync_to_async(thread_sensitive=False)` adds to the executor
    (copying the context back, a shielded future) cost ~15 us of CPU a hop, two hops a call.
    """
    loop = asyncio.get_running_loop()
    with live.send_from_threads_on(loop):
        context = contextvars.copy_context()
    call = functools.partial(context.run, _call_in_pooled_thread, fn, *args, **kwargs)
    return await loop.run_in_executor(None, call)


def caller_of(ctx: Context) -> tuple[str, Agent | None]:
    """The caller's token, with the agent when the HTTP middleware verified it already.

    HTTP: the verified bearer token (never the environment); stdio: AIWORKER_AGENT_TOKEN.
    """
    if ctx.headers is not None:  # HTTP; never fall back to the environment here
        access = get_access_token()
        if access is None:
            raise ToolError("[permission_denied] No agent token. Send 'Authorization: Bearer'.")
        return access.token, getattr(access, "agent", None)
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise ToolError(f"[permission_denied] Set {TOKEN_ENV} to the agent's token.")
    return token, None


def token_of(ctx: Context) -> str:
    """The caller's token: the verified bearer token on HTTP, the environment on stdio."""
    return caller_of(ctx)[0]


def cli_client_of(ctx: Context) -> str | None:
    """Who to record the call for: None for the runner's own calls, else the CLI's User-Agent
    ("stdio" on stdio, which only agent CLIs use)."""
    headers = ctx.headers
    if headers is None:
        return "stdio"
    if headers.get("x-aiworker-client") == RUNNER_CLIENT:
        return None
    return headers.get("user-agent") or "unknown"


def _authenticated_call(
    token: str,
    fn: Callable[..., T],
    kwargs: dict[str, Any],
    verified: Agent | None = None,
    record_for: str | None = None,
    touch: bool = True,
) -> T:
    for attempt in range(DEADLOCK_RETRIES):
        try:
            # `verified` was loaded by this request's token check a moment ago; after a retry
            # the row may have changed (the failed attempt rolled back), so read it again.
            agent: Agent = verified if verified and attempt == 0 else agent_authenticate(token)
            if touch:
                agent_touch(agent=agent)  # any call is a heartbeat and renews the task lease
            if record_for is None:
                return fn(agent=agent, **kwargs)
            try:
                result = fn(agent=agent, **kwargs)
            except errors.DomainError as exc:
                agent_record_mcp_call(
                    agent=agent, tool=current_tool.get(), error_code=exc.code, client=record_for
                )
                raise
            agent_record_mcp_call(agent=agent, tool=current_tool.get(), client=record_for)
            return result
        except OperationalError as exc:
            # Every service is one transaction, so a deadlock rolled back the part that failed
            # and the touch is idempotent: trying again is safe, and the agent never sees it.
            if exc.args[:1] != (1213,) or attempt == DEADLOCK_RETRIES - 1:
                raise
            logger.info("deadlock in an MCP call, retry %d", attempt + 1)
            time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
    raise AssertionError("unreachable")


async def run_as_agent(
    ctx: Context, fn: Callable[..., T], *, touch: bool = True, **kwargs: Any
) -> T:
    """Authenticate, touch, then run `fn(agent=…, **kwargs)`; domain errors become tool errors.

    `touch=False` for a tool that writes the heartbeat itself (the heartbeat tool), so that one
    call renews the lease once.
    """
    token, verified = caller_of(ctx)
    client = cli_client_of(ctx)
    try:
        return await _db(_authenticated_call, token, fn, kwargs, verified, client, touch)
    except errors.DomainError as exc:
        raise ToolError(explain(exc)) from None


async def run_db(fn: Callable[..., T], **kwargs: Any) -> T:
    """A further database call inside a tool (already authenticated), errors as tool errors."""
    try:
        return await _db(fn, **kwargs)
    except errors.DomainError as exc:
        raise ToolError(explain(exc)) from None
