"""Live board events (SPEC §8), sent to one Channels group per project after commit.

From sync code the send normally blocks on `async_to_sync`. Code called from an event loop's
worker thread (the MCP server) can declare that loop with `send_from_threads_on`: its events are
then handed to the loop and the thread goes on at once. Per project group they leave in the
order they were committed (one FIFO lock per group), as with the blocking send, and the events
of one commit (a claim's task and agent events) leave in one `board.events` message.

The in-memory channel layer of the embedded default lives in one process, so under `make run`
the Celery worker and beat would send into a layer no board listens to. There
`LIVE_EVENTS_FORWARD_URL` names the web server's relay (`relay_view`): each event is posted to
it, signed with SECRET_KEY and stamped with the time, and the web server sends it to its
boards. One blocking post per event keeps a process's events in commit order.
"""

import asyncio
import contextlib
import contextvars
import hashlib
import json
import logging
import urllib.request
import weakref
from collections.abc import Iterator
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core import signing
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

logger = logging.getLogger(__name__)

_serving_loop: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "live_serving_loop", default=None
)
# Per loop, per group: the events handed over and not yet sent (see `_start_send`), and the
# sends under way (the loop holds tasks only weakly).
_outboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Outbox]]" = (
    weakref.WeakKeyDictionary()
)
_pending: set["asyncio.Task[None]"] = set()

EVENTS = frozenset(
    {
        "task.created",
        "task.updated",
        "task.status_changed",
        "task.needs_input",
        "task.ready_to_test",
        "agent.status",
        "deploy.queued",
        "deploy.merging",
        "deploy.started",
        "deploy.completed",
        "deploy.failed",
    }
)


def project_group(project_id: int) -> str:
    return f"project-{project_id}"


# Every MCP server process's check_response listener joins this one group
# (mcpbridge/wait_listener.py); a message names the question or the agent it is about.
WAITS_GROUP = "check-response-waits"


def wake_question_waits_on_commit(question_id: int) -> None:
    """After commit, wake the check_response waits on this question, in every process."""
    transaction.on_commit(
        lambda: _send_to_waits({"type": "question.answered", "question_id": question_id})
    )


def end_agent_waits_on_commit(agent_id: int) -> None:
    """After commit, wake the agent's waits so they see its token is no longer valid."""
    transaction.on_commit(lambda: _send_to_waits({"type": "agent.revoked", "agent_id": agent_id}))


def _send_to_waits(message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _serving_loop.get()
    if loop is not None and loop.is_running() and not _is_loop_thread(loop):
        try:
            loop.call_soon_threadsafe(_start_send, loop, layer, WAITS_GROUP, message)
            return
        except RuntimeError:  # the loop closed meanwhile: send the blocking way
            pass
    try:
        async_to_sync(layer.group_send)(WAITS_GROUP, message)
    except Exception:  # the listeners' sweep finds the change within seconds
        logger.warning("could not send %s to the waits", message, exc_info=True)


def session_group(session_key: str) -> str:
    """The sockets opened with one login session (a hash: the key itself is a credential)."""
    return f"session-{hashlib.sha256(session_key.encode()).hexdigest()[:40]}"


def close_session_sockets(session_key: str | None) -> None:
    """Close every WebSocket that this session opened, in every process (its logout)."""
    layer = get_channel_layer()
    if session_key and layer is not None:
        async_to_sync(layer.group_send)(session_group(session_key), {"type": "session.closed"})


def broadcast_on_commit(*, project_id: int, event: str, data: dict[str, Any]) -> None:
    """Queue `event` for the project's boards; it leaves only if the transaction commits."""
    if event not in EVENTS:
        raise ValueError(f"unknown live event {event!r}")
    transaction.on_commit(lambda: send_now(project_id=project_id, event=event, data=data))


@contextlib.contextmanager
def send_from_threads_on(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Within this context (and the sync_to_async threads it starts), hand sends to `loop`."""
    token = _serving_loop.set(loop)
    try:
        yield
    finally:
        _serving_loop.reset(token)


def board_message(event: str, data: dict[str, Any]) -> dict[str, Any]:
    """The layer message of a board event. `text` is the frame every socket sends, encoded
    once here rather than by each of a board's sockets (tasks/consumers.py)."""
    text = json.dumps({"event": event, "data": data}, cls=DjangoJSONEncoder)
    return {"type": "board.event", "event": event, "data": data, "text": text}


def send_now(*, project_id: int, event: str, data: dict[str, Any]) -> None:
    if settings.LIVE_EVENTS_FORWARD_URL:
        _forward(settings.LIVE_EVENTS_FORWARD_URL, project_id=project_id, event=event, data=data)
        return
    layer = get_channel_layer()
    if layer is None:
        return
    group = project_group(project_id)
    message = board_message(event, data)
    loop = _serving_loop.get()
    if loop is not None and loop.is_running() and not _is_loop_thread(loop):
        try:
            loop.call_soon_threadsafe(_start_send, loop, layer, group, message)
            return
        except RuntimeError:  # the loop closed meanwhile: send the blocking way
            pass
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        # The change is committed already; a channel-layer outage only costs liveness, and a
        # board that reconnects resynchronises from the database.
        logger.warning("live event %s for project %s not sent", event, project_id, exc_info=True)


def _is_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class _Outbox:
    """One group's events on one loop: a FIFO lock keeps them in the order they were handed
    over, and the events that queue up while a send is under way leave together."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.queued: list[dict] = []


def _start_send(loop: asyncio.AbstractEventLoop, layer: Any, group: str, message: dict) -> None:
    # Runs on the loop, in the order the threads handed the events over. The first event queued
    # since the last drain took them starts a drain; the events queued before it runs (a claim
    # commits two, back to back) leave with it in one `group_send`: on Redis each costs two or
    # three round trips even for a board no one watches.
    outbox = _outboxes.setdefault(loop, {}).setdefault(group, _Outbox())
    outbox.queued.append(message)
    if len(outbox.queued) == 1:
        task = loop.create_task(_drain(outbox, layer, group))
        _pending.add(task)
        task.add_done_callback(_pending.discard)


async def _drain(outbox: _Outbox, layer: Any, group: str) -> None:
    async with outbox.lock:  # drains take it first come, first served
        messages, outbox.queued = outbox.queued, []
        for message in _batched(messages):
            try:
                await layer.group_send(group, message)
            except Exception:
                logger.warning(
                    "live event %s for %s not sent", message.get("event"), group, exc_info=True
                )


def _batched(messages: list[dict]) -> list[dict]:
    """Runs of board events as one `board.events` message of their frames, in order; other
    messages (the check_response waits') as they are."""
    out: list[dict] = []
    for message in messages:
        if message.get("type") == "board.event" and "text" in message:
            last = out[-1] if out else None
            if last is not None and last.get("type") == "board.event" and "text" in last:
                out[-1] = {"type": "board.events", "texts": [last["text"], message["text"]]}
                continue
            if last is not None and last.get("type") == "board.events":
                last["texts"].append(message["text"])
                continue
        out.append(message)
    return out


# --- the relay: events of processes without the web server's channel layer -------------------

RELAY_SALT = "aiworker.live.relay"
# A signed event older than this is refused, so a captured request cannot be replayed later.
RELAY_MAX_AGE = 60
RELAY_TIMEOUT = 5.0


def _forward(url: str, *, project_id: int, event: str, data: dict[str, Any]) -> None:
    body = signing.dumps(
        {"project_id": project_id, "event": event, "data": data}, salt=RELAY_SALT
    ).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    try:
        with urllib.request.urlopen(request, timeout=RELAY_TIMEOUT) as answer:
            answer.read()
    except Exception:
        # As with a channel-layer outage: committed already, only liveness is lost.
        logger.warning("live event %s for project %s not relayed", event, project_id, exc_info=True)


@csrf_exempt  # no session or form: the signature is the authentication
@require_POST
async def relay_view(request: HttpRequest) -> HttpResponse:
    """Send an event relayed by a worker or beat process to this process's boards."""
    try:
        payload = signing.loads(request.body.decode(), salt=RELAY_SALT, max_age=RELAY_MAX_AGE)
    except (signing.BadSignature, UnicodeDecodeError):
        return HttpResponse(status=403)
    if not isinstance(payload, dict):
        return HttpResponse(status=400)
    event, project_id, data = payload.get("event"), payload.get("project_id"), payload.get("data")
    if event not in EVENTS or type(project_id) is not int or not isinstance(data, dict):
        return HttpResponse(status=400)
    layer = get_channel_layer()
    if layer is not None:
        message = board_message(event, data)
        await layer.group_send(project_group(project_id), message)
    return HttpResponse(status=204)
