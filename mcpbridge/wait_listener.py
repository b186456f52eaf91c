"""One listener per MCP server process for all its check_response waits (mcpbridge/waiting.py).

The listener owns one channel-layer channel, joined to `live.WAITS_GROUP`: `question_answer`
sends `{"type": "question.answered", "question_id": …}` there after commit, and agent_revoke
and agent_rotate_token send `{"type": "agent.revoked", "agent_id": …}`. Each message wakes only
the waits it names, found in two dicts (question id -> waits, agent id -> waits), so a wait
costs an entry in them and nothing more: no channel, no group, no Redis command, no polling.

Against a lost message (a Redis outage, a full channel, an answer given where no layer reaches
this process) one sweep every SWEEP_SECONDS reads, for all the waits of the process at once,
which of their questions are still open and which of their agents' tokens are still valid, and
wakes the others. A woken wait reads its question once; when it is still pending (a spurious
wake) it goes on waiting.
"""

import asyncio
import logging
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from agents.models import Agent
from aiworker.live import WAITS_GROUP
from mcpbridge.auth import run_db
from tasks.models import TaskQuestion

logger = logging.getLogger(__name__)
SWEEP_SECONDS = 5.0
# The layer forgets a group member after its group_expiry (a day by default): join again.
REJOIN_SECONDS = 3600.0
# Answers and revocations seen lately: a wait registered just after its message (its first read
# ran while the message passed) is woken at once instead of at the next sweep.
RECENT_SECONDS = 2 * SWEEP_SECONDS
RETRY_SECONDS = 2.0
JOIN_TIMEOUT = 5.0
SWEEP_CHUNK = 1000
# See _nudge.
NUDGE_SECONDS = 0.5


@dataclass(eq=False)
class Wait:
    question_id: int
    agent_id: int
    token_hash: str
    woken: asyncio.Event = field(default_factory=asyncio.Event)


def still_waiting(
    *, question_ids: list[int], agent_ids: list[int]
) -> tuple[set[int], dict[int, str]]:
    """(the questions still open, the token hash of each agent not revoked), in chunks."""
    open_ids: set[int] = set()
    hashes: dict[int, str] = {}
    for i in range(0, len(question_ids), SWEEP_CHUNK):
        chunk = question_ids[i : i + SWEEP_CHUNK]
        open_ids.update(
            TaskQuestion.objects.filter(pk__in=chunk, answered_at__isnull=True).values_list(
                "pk", flat=True
            )
        )
    for i in range(0, len(agent_ids), SWEEP_CHUNK):
        chunk = agent_ids[i : i + SWEEP_CHUNK]
        hashes.update(
            Agent.objects.filter(pk__in=chunk, revoked_at__isnull=True).values_list(
                "pk", "token_hash"
            )
        )
    return open_ids, hashes


class WaitListener:
    """The waits of one event loop (one server process), and the tasks that wake them."""

    def __init__(self) -> None:
        self.by_question: dict[int, set[Wait]] = {}
        self.by_agent: dict[int, set[Wait]] = {}
        self._answered: dict[int, float] = {}
        self._revoked: dict[int, float] = {}
        self._joined = asyncio.Event()  # set once joined, or once joining failed (sweep only)
        self._joined_at = 0.0
        # When the last sweep that succeeded began (monotonic): every wait registered before
        # then, and not woken, had its question still open and its token valid at that moment.
        self.swept_at = float("-inf")
        self.channel: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- the registry -------------------------------------------------------------------------

    @contextmanager
    def registered(self, *, question_id: int, agent_id: int, token_hash: str) -> Iterator[Wait]:
        wait = Wait(question_id=question_id, agent_id=agent_id, token_hash=token_hash)
        self.by_question.setdefault(question_id, set()).add(wait)
        self.by_agent.setdefault(agent_id, set()).add(wait)
        if question_id in self._answered or agent_id in self._revoked:
            wait.woken.set()
        try:
            yield wait
        finally:  # also when the call is cancelled
            _remove(self.by_question, question_id, wait)
            _remove(self.by_agent, agent_id, wait)

    def open_waits(self) -> int:
        return sum(len(waits) for waits in self.by_question.values())

    def dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "question.answered" and type(message.get("question_id")) is int:
            self._answered[message["question_id"]] = time.monotonic()
            _wake(self.by_question.get(message["question_id"], ()))
        elif kind == "agent.revoked" and type(message.get("agent_id")) is int:
            self._revoked[message["agent_id"]] = time.monotonic()
            _wake(self.by_agent.get(message["agent_id"], ()))

    async def ready(self, *, most: float = JOIN_TIMEOUT) -> None:
        """Until the listener has joined its group (bounded: the sweep answers meanwhile)."""
        with suppress(TimeoutError):
            async with asyncio.timeout(min(most, JOIN_TIMEOUT)):
                await self._joined.wait()

    # --- the tasks ----------------------------------------------------------------------------

    def start(self) -> None:
        layer = get_channel_layer()
        if layer is not None and not isinstance(layer, InMemoryChannelLayer):
            # channels_redis keeps its receive state (count, lock, buffers) on the layer object
            # and does not support two event loops receiving through one object at once; a
            # process with a second loop (a test's, beside an in-process server's) raced on it
            # until a receive hung past its cancellation. Each loop's listener has its own.
            # (The in-memory layer keeps its groups on its one object: it is shared.)
            layer = _own_redis_layer(layer)
        self._tasks.append(asyncio.create_task(self._listen(layer)))
        self._tasks.append(asyncio.create_task(self._sweep_forever(layer)))
        if isinstance(layer, InMemoryChannelLayer):
            self._tasks.append(asyncio.create_task(self._nudge()))

    async def _listen(self, layer: Any) -> None:
        if layer is None:  # no channel layer configured: the sweep alone wakes the waits
            self._joined.set()
            await asyncio.Event().wait()
        try:
            while True:
                try:
                    if self.channel is None:
                        self.channel = await layer.new_channel(prefix="waits")
                    await layer.group_add(WAITS_GROUP, self.channel)
                    self._joined_at = time.monotonic()
                    # Messages sent before the join (or during an outage) were not seen: every
                    # wait registered meanwhile reads its question once.
                    _wake(w for waits in list(self.by_question.values()) for w in waits)
                    self._joined.set()
                    while True:
                        self.dispatch(await self._receive(layer))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    _stop_if_cancelled()
                    logger.warning("check_response listener: channel layer failed", exc_info=True)
                    self._joined.set()  # waits go on; the sweep wakes them meanwhile
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            if self.channel is not None:  # best effort: the process is ending
                with suppress(Exception):
                    await asyncio.wait_for(layer.group_discard(WAITS_GROUP, self.channel), 2)
            if hasattr(layer, "close_pools"):  # this loop's own Redis layer (see start)
                with suppress(Exception):
                    await asyncio.wait_for(layer.close_pools(), 2)

    async def _receive(self, layer: Any) -> dict[str, Any]:
        """`layer.receive`, in a task of its own, so that a cancellation ends the listener at
        once whatever the library does with it: channels_redis's receive was seen still
        reading, "cancelling", 30 s after it was cancelled (a test under load, with the await
        chain from tests/mcpbridge/conftest.run). `_listen`'s clean-up then closes the layer's
        pools, which ends that read (its connections retry nothing: `_own_redis_layer`)."""
        receiving = asyncio.ensure_future(layer.receive(self.channel))
        try:
            return await asyncio.shield(receiving)
        except asyncio.CancelledError:
            receiving.cancel()
            raise

    async def _sweep_forever(self, layer: Any) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep(layer)
            except asyncio.CancelledError:
                raise
            except Exception:
                _stop_if_cancelled()
                logger.warning("check_response sweep failed", exc_info=True)

    def checked_since(self, registered_at: float) -> bool:
        """Whether a sweep began after `registered_at`, lately, and succeeded: a wait registered
        then and not woken since is still pending (short of a message lost within the last
        sweep period, which the caller's next call sees)."""
        return registered_at <= self.swept_at and time.monotonic() - self.swept_at <= (
            2 * SWEEP_SECONDS
        )

    async def sweep(self, layer: Any = None) -> None:
        """Wake the waits whose question is no longer open or whose token no longer holds."""
        now = time.monotonic()
        for recent in (self._answered, self._revoked):
            for key in [k for k, at in recent.items() if now - at > RECENT_SECONDS]:
                del recent[key]
        if (
            layer is not None
            and self.channel is not None
            and now - self._joined_at > REJOIN_SECONDS
        ):
            await layer.group_add(WAITS_GROUP, self.channel)
            self._joined_at = now
        if not self.by_question:
            self.swept_at = now
            return
        open_ids, hashes = await run_db(
            still_waiting, question_ids=list(self.by_question), agent_ids=list(self.by_agent)
        )
        for question_id, waits in list(self.by_question.items()):
            if question_id not in open_ids:
                _wake(waits)
        for agent_id, waits in list(self.by_agent.items()):
            _wake(w for w in waits if hashes.get(agent_id) != w.token_hash)
        self.swept_at = now

    async def _nudge(self) -> None:
        # The in-memory layer's queue is not thread-safe: a group_send run on another thread's
        # event loop (a sync caller outside this server's loop, like the test suite's answers)
        # completes our receive without waking this loop, which then sees it at its next
        # wake-up. This bounds that to NUDGE_SECONDS. (Sends from this loop's own threads are
        # handed to the loop: aiworker.live.send_from_threads_on.)
        while True:
            await asyncio.sleep(NUDGE_SECONDS)

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()


def _stop_if_cancelled() -> None:
    """End the task when it was asked to stop but a library turned the CancelledError into
    another error: channels_redis's receive, cancelled while its Redis read was failing, raises
    that read's ConnectionError. Retrying then would receive again, for ever, and the process
    (or a test's event loop) never finishes shutting down."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _own_redis_layer(shared: Any) -> Any:
    """A Redis layer object for one loop's listener (see `WaitListener.start`), built from the
    settings like the shared one, except that its connections never retry a command by
    themselves: a read whose connection the listener's clean-up closed must end with the
    error, not reconnect and read again (see `WaitListener._receive`). The listener's own
    loop rejoins after RETRY_SECONDS when the layer fails, as after any outage.
    """
    layers: dict[str, Any] = settings.CHANNEL_LAYERS
    config: dict[str, Any] = dict(layers[DEFAULT_CHANNEL_LAYER].get("CONFIG", {}))
    hosts = config.get("hosts")
    if hosts and all(isinstance(host, str | dict) for host in hosts):
        config["hosts"] = [
            {
                **({"address": host} if isinstance(host, str) else host),
                "retry": Retry(NoBackoff(), 0),
            }
            for host in hosts
        ]
    return type(shared)(**config)


def _wake(waits: Iterable[Wait]) -> None:
    for wait in list(waits):
        wait.woken.set()


def _remove(index: dict[int, set[Wait]], key: int, wait: Wait) -> None:
    waits = index.get(key)
    if waits is not None:
        waits.discard(wait)
        if not waits:
            del index[key]


_listeners: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WaitListener]" = (
    weakref.WeakKeyDictionary()
)


def current_listener() -> WaitListener:
    """This event loop's listener, started on its first wait; it lives as long as the loop."""
    loop = asyncio.get_running_loop()
    listener = _listeners.get(loop)
    if listener is None:
        listener = _listeners[loop] = WaitListener()
        listener.start()
        # Its tasks hold the loop: forget the listener when they end (the loop is closing).
        listener._tasks[0].add_done_callback(lambda _: _listeners.pop(loop, None))
    return listener
