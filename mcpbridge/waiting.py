"""`check_response(wait_seconds=…)`: sleep until the question is answered, without a busy loop.

A wait is an entry in this process's one listener (mcpbridge/wait_listener.py): no channel,
group or poll of its own. `question_answer` sends the question's id to the listeners after
commit, which wakes the waits on that question at once (Redis layer: across processes;
in-memory layer: within one process); the wait then reads its question once. A lost message
is caught by the listener's sweep, one query for all the waits of the process every few
seconds. At its deadline a wait that was never woken answers "pending" from what it read
last, without reading again, when a sweep since it began saw its question open and its token
valid (it reads once more otherwise: a short wait, a failing sweep). That read was a third of
a steady fleet's database work (docs/PERFORMANCE.md); an answer whose message was lost in the
last few seconds is what the agent's next call reads.

Each read re-checks the caller's token, and agent_revoke and agent_rotate_token wake the
agent's waits: a revoked agent's wait ends at once with a permission error, never with the
answer. One agent may hold MCP_MAX_WAITS_PER_AGENT waits at once in one process; one more is
refused at once ("too_many_waits").
"""

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from django.conf import settings
from mcp.server.mcpserver.exceptions import ToolError

from agents.services import agent_authenticate, hash_token
from aiworker import errors
from mcpbridge.auth import explain, run_db
from mcpbridge.wait_listener import current_listener
from tasks.selectors import question_with_task_holder

_open_waits: Counter[int] = Counter()  # agent id -> waits open in this process (one loop)


def _load(*, question_id: int, token: str) -> dict[str, Any] | None:
    from mcpbridge.context import question_data

    agent_authenticate(token)  # PermissionDenied once revoked or rotated: no answer then
    found = question_with_task_holder(question_id=question_id)
    return question_data(found[0]) if found else None


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
    listener = current_listener()
    current = first
    with listener.registered(
        question_id=question_id, agent_id=agent_id, token_hash=hash_token(token.strip())
    ) as wait:
        # The first wait of a process: until its listener has joined (bounded).
        await listener.ready(most=timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining > 0:
                with suppress(TimeoutError):  # then this is the deadline
                    async with asyncio.timeout(remaining):
                        await wait.woken.wait()
            if not wait.woken.is_set() and listener.checked_since(started):
                break  # the deadline, and the sweep saw it pending since: nothing to read
            wait.woken.clear()
            loaded = await run_db(_load, question_id=question_id, token=token)
            if loaded is None:
                break  # deleted with its task meanwhile; report what we knew
            current = loaded
            if current["status"] == "answered" or time.monotonic() >= deadline:
                break
    return {**current, "waited_seconds": round(time.monotonic() - started, 3)}
