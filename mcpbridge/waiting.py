"""`check_response(wait_seconds=…)`: sleep until the question is answered, without a busy loop.

The waiter joins the Channels group of the task's project: `question_answer` broadcasts an
event about the task after commit, which wakes the waiter at once (Redis layer: across
processes; in-memory layer: within one process). Whatever the layer delivers, the database is
read again at most once a second, so an answer given anywhere is seen within about a second.

Each read re-checks the caller's token, and the waiter also joins its agent's group, which
agent_revoke and agent_rotate_token wake: a revoked agent's wait ends at once with a
permission error, never with the answer. One agent may hold MCP_MAX_WAITS_PER_AGENT waits at
once in one process; one more is refused at once ("too_many_waits").
"""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from mcp.server.mcpserver.exceptions import ToolError

from agents.services import agent_authenticate
from aiworker import errors
from aiworker.live import agent_group, project_group
from mcpbridge.auth import explain, run_db
from tasks.models import TaskQuestion

logger = logging.getLogger(__name__)
POLL_SECONDS = 1.0
_open_waits: Counter[int] = Counter()  # agent id -> waits open in this process (one loop)


def _load(*, question_id: int, token: str) -> dict[str, Any] | None:
    from mcpbridge.context import question_data

    agent_authenticate(token)  # PermissionDenied once revoked or rotated: no answer then
    item = TaskQuestion.objects.select_related("answered_by").filter(pk=question_id).first()
    return question_data(item) if item else None


@contextmanager
def _counted(agent_id: int) -> Iterator[None]:
    cap = settings.MCP_MAX_WAITS_PER_AGENT
    if _open_waits[agent_id] >= cap:
        raise errors.TooManyWaits(
            f"Agent {agent_id} already has {_open_waits[agent_id]} check_response waits open "
            f"(at most {cap}). Wait on one question at a time, or call with wait_seconds=0."
        )
    _open_waits[agent_id] += 1
    try:
        yield
    finally:
        _open_waits[agent_id] -= 1
        if _open_waits[agent_id] <= 0:
            del _open_waits[agent_id]


def _project_of(*, question_id: int) -> int | None:
    return (
        TaskQuestion.objects.filter(pk=question_id).values_list("task__project_id", flat=True)
    ).first()


async def wait_for_answer(
    first: dict[str, Any], *, question_id: int, timeout: float, agent_id: int, token: str
) -> dict:
    try:
        with _counted(agent_id):
            return await _wait(
                first, question_id=question_id, timeout=timeout, agent_id=agent_id, token=token
            )
    except errors.TooManyWaits as exc:  # (the wait's own errors are tool errors already)
        raise ToolError(explain(exc)) from None


async def _wait(
    first: dict[str, Any], *, question_id: int, timeout: float, agent_id: int, token: str
) -> dict:
    started = time.monotonic()
    deadline = started + timeout
    layer = get_channel_layer()
    channel = group = None
    if layer is not None:
        project_id = await run_db(_project_of, question_id=question_id)
        group = project_group(project_id) if project_id else None
        try:
            channel = await layer.new_channel()
            if group:
                await layer.group_add(group, channel)
            await layer.group_add(agent_group(agent_id), channel)
        except Exception:  # the layer is only a shortcut; polling still answers
            logger.warning("check_response: channel layer unavailable", exc_info=True)
            channel = None
    current = first
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            next_poll = min(deadline, now + POLL_SECONDS)
            await _sleep_or_wake(layer, channel, first["task_id"], until=next_poll)
            loaded = await run_db(_load, question_id=question_id, token=token)
            if loaded is None:
                break  # deleted with its task meanwhile; report what we knew
            current = loaded
            if current["status"] == "answered":
                break
    finally:
        if channel is not None:
            for joined in filter(None, (group, agent_group(agent_id))):
                try:
                    await layer.group_discard(joined, channel)
                except Exception:
                    logger.debug("group_discard failed", exc_info=True)
    return {**current, "waited_seconds": round(time.monotonic() - started, 3)}


async def _sleep_or_wake(layer: Any, channel: str | None, task_id: int, *, until: float) -> None:
    """Return at `until`, or earlier when an event about the task arrives."""
    while True:
        remaining = until - time.monotonic()
        if remaining <= 0:
            return
        if channel is None:
            await asyncio.sleep(remaining)
            return
        try:
            message = await asyncio.wait_for(layer.receive(channel), timeout=remaining)
        except TimeoutError:
            return
        except Exception:
            logger.debug("channel receive failed", exc_info=True)
            await asyncio.sleep(max(0.0, until - time.monotonic()))
            return
        if message.get("type") == "agent.revoked":
            return
        if (message.get("data") or {}).get("id") == task_id:
            return
