"""The one check_response listener of a process (mcpbridge/wait_listener.py): a message wakes
only the waits it names, a lost one is found by the sweep, and a wait that ends or is cancelled
leaves nothing behind. On the Redis layer (REDIS_URL) the messages go through Redis; one test
answers in this process a wait served by another (a `mcp_server` subprocess)."""

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from typing import Any

import httpx2
import pytest
from channels.layers import get_channel_layer
from django.conf import settings

from agents.services import agent_rotate_token, hash_token
from aiworker.actors import Actor
from aiworker.live import WAITS_GROUP
from mcpbridge import waiting
from mcpbridge.context import question_data
from mcpbridge.wait_listener import WaitListener, current_listener
from tasks import services as task_services
from tasks.models import Task, TaskQuestion
from tests import factories
from tests.mcpbridge.conftest import call, free_socket, http_client, run, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
GUARD = 20  # seconds: only so that a broken wake fails instead of hanging


def _asked() -> tuple[TaskQuestion, Any, str]:
    agent, token = factories.make_agent()
    task = factories.make_task(state="needs_input", assigned_agent=agent)
    question = TaskQuestion.objects.create(task=task, agent=agent, question="Go?")
    return question, agent, token


async def _woken(*waits: Any) -> None:
    await asyncio.wait_for(asyncio.gather(*(w.woken.wait() for w in waits)), GUARD)


async def _registered(listener: Any, wait: "asyncio.Task[Any]") -> None:
    """Until the wait is in the listener; a wait that failed before (or never got there) fails
    the test here instead of spinning for ever."""
    started = time.monotonic()
    while listener.open_waits() == 0:
        if wait.done():
            raise AssertionError(f"the wait ended before it registered: {wait.exception()!r}")
        assert time.monotonic() - started < GUARD, "the wait did not register"
        await asyncio.sleep(0.01)


def test_an_answer_wakes_only_the_waits_on_its_question_and_a_revocation_only_its_agents():
    async def scenario() -> dict[str, Any]:
        listener = current_listener()
        layer = get_channel_layer()
        with (
            listener.registered(question_id=1, agent_id=10, token_hash="a") as a,
            listener.registered(question_id=2, agent_id=20, token_hash="b") as b,
            listener.registered(question_id=1, agent_id=30, token_hash="c") as c,
        ):
            await listener.ready()  # the join wakes the waits registered before it: clear
            for w in (a, b, c):
                w.woken.clear()
            assert listener.open_waits() == 3
            await layer.group_send(WAITS_GROUP, {"type": "question.answered", "question_id": 1})
            await _woken(a, c)  # one message: a and c now, b had its chance in the same dispatch
            after_answer = {"a": a.woken.is_set(), "b": b.woken.is_set(), "c": c.woken.is_set()}
            a.woken.clear()
            c.woken.clear()
            await layer.group_send(WAITS_GROUP, {"type": "agent.revoked", "agent_id": 20})
            await _woken(b)
            after_revoke = {"a": a.woken.is_set(), "b": b.woken.is_set(), "c": c.woken.is_set()}
        return {"answer": after_answer, "revoke": after_revoke, "left": listener.open_waits()}

    out = run(scenario())
    assert out["answer"] == {"a": True, "b": False, "c": True}
    assert out["revoke"] == {"a": False, "b": True, "c": False}
    assert out["left"] == 0


def test_a_message_just_before_the_wait_registers_still_wakes_it():
    """The first read ran while the answer went by: the wait is woken as it registers."""

    async def scenario() -> bool:
        listener = current_listener()
        await listener.ready()
        layer = get_channel_layer()
        with listener.registered(question_id=7, agent_id=70, token_hash="x") as probe:
            await layer.group_send(WAITS_GROUP, {"type": "question.answered", "question_id": 8})
            await layer.group_send(WAITS_GROUP, {"type": "question.answered", "question_id": 7})
            await _woken(probe)  # both messages were dispatched, in order
        with listener.registered(question_id=8, agent_id=80, token_hash="y") as late:
            return late.woken.is_set()

    assert run(scenario()) is True


def test_the_answer_service_wakes_the_wait_which_returns_the_answer():
    question, agent, token = _asked()
    user = factories.make_user()

    async def scenario() -> tuple[dict, int]:
        first = question_data(question)
        listener = current_listener()
        wait = asyncio.create_task(
            waiting.wait_for_answer(
                first, question_id=question.pk, timeout=GUARD, agent_id=agent.pk, token=token
            )
        )
        await _registered(listener, wait)
        await listener.ready()
        await asyncio.to_thread(
            task_services.question_answer,
            question_id=question.pk,
            actor=Actor.of_user(user),
            answer="yes",
        )
        return await wait, listener.open_waits()

    answer, left = run(scenario())
    assert answer["status"] == "answered" and answer["answer"] == "yes"
    assert answer["waited_seconds"] < GUARD  # woken, not timed out
    assert left == 0 and waiting._open_waits == {}


def test_a_cancelled_wait_leaves_nothing_behind():
    question, agent, token = _asked()

    async def scenario() -> tuple[int, int]:
        listener = current_listener()
        wait = asyncio.create_task(
            waiting.wait_for_answer(
                question_data(question),
                question_id=question.pk,
                timeout=GUARD,
                agent_id=agent.pk,
                token=token,
            )
        )
        await _registered(listener, wait)
        during = listener.open_waits()
        wait.cancel()
        with pytest.raises(asyncio.CancelledError):
            await wait
        return during, listener.open_waits()

    during, after = run(scenario())
    assert (during, after) == (1, 0)
    assert waiting._open_waits == {}


def test_the_sweep_wakes_waits_whose_message_was_lost():
    """Answered without a message, deleted, rotated without a message: one sweep finds each;
    the wait still open is left alone."""
    answered, agent_a, _ = _asked()
    deleted, agent_d, _ = _asked()
    rotated, agent_r, old_token = _asked()
    still, agent_s, token_s = _asked()
    TaskQuestion.objects.filter(pk=answered.pk).update(answer="yes", answered_at=answered.asked_at)
    Task.objects.filter(pk=deleted.task_id).delete()

    async def scenario() -> dict[str, bool]:
        listener = current_listener()
        await listener.ready()  # joining wakes every wait registered before: not the sweep's
        with (
            listener.registered(question_id=answered.pk, agent_id=agent_a.pk, token_hash="h") as a,
            listener.registered(question_id=deleted.pk, agent_id=agent_d.pk, token_hash="h") as d,
            listener.registered(
                question_id=rotated.pk, agent_id=agent_r.pk, token_hash=hash_token(old_token)
            ) as r,
            listener.registered(
                question_id=still.pk, agent_id=agent_s.pk, token_hash=hash_token(token_s)
            ) as s,
        ):
            # (a and d carry a stale token hash too; they are woken either way)
            await asyncio.to_thread(_rotate_quietly, agent_r.pk)
            for w in (a, d, r, s):
                w.woken.clear()  # only the sweep's wakes count
            await listener.sweep()
            return {"a": a.woken.is_set(), "d": d.woken.is_set(), "r": r.woken.is_set(),
                    "s": s.woken.is_set()}  # fmt: skip

    assert run(scenario()) == {"a": True, "d": True, "r": True, "s": False}


@pytest.mark.parametrize("swept", [True, False])
def test_at_its_deadline_a_wait_reads_again_only_without_a_sweep_since_it_began(swept, monkeypatch):
    """Never woken: a sweep since the wait began saw it pending, so the deadline answers from
    the first read; without one (a wait shorter than the sweep period) it reads once more."""
    question, agent, token = _asked()
    reads = []
    load = waiting._load

    def counted_load(**kwargs: Any) -> Any:
        reads.append(kwargs["question_id"])
        return load(**kwargs)

    monkeypatch.setattr(waiting, "_load", counted_load)

    async def scenario() -> dict[str, Any]:
        listener = current_listener()
        await listener.ready()
        wait = asyncio.create_task(
            waiting.wait_for_answer(
                question_data(question), question_id=question.pk, timeout=1.0,
                agent_id=agent.pk, token=token,
            )
        )  # fmt: skip
        await _registered(listener, wait)
        if swept:
            await listener.sweep()
        return await wait

    answer = run(scenario())
    assert answer["status"] == "pending" and answer["question_id"] == question.pk
    assert 1.0 <= answer["waited_seconds"] < GUARD
    assert reads == ([] if swept else [question.pk])


class _CancelTurnedIntoConnectionError:
    """A channel layer whose receive, when cancelled, raises ConnectionError instead: what
    channels_redis did when the cancel met a failing Redis read (seen under load on MariaDB +
    Redis; a stand-in, because that timing cannot be produced on demand)."""

    async def new_channel(self, prefix: str) -> str:
        return f"{prefix}.fake!1"

    async def group_add(self, group: str, channel: str) -> None:
        pass

    async def group_discard(self, group: str, channel: str) -> None:
        pass

    async def receive(self, channel: str) -> dict:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ConnectionError("Connection closed by server.") from None
        return {}


def test_the_listener_ends_when_cancelled_even_if_the_layer_turns_the_cancel_into_an_error():
    async def scenario() -> bool:
        listener = WaitListener()
        task = asyncio.create_task(listener._listen(_CancelTurnedIntoConnectionError()))
        await asyncio.wait_for(listener._joined.wait(), GUARD)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=GUARD)
        return task in done and task.cancelled()

    assert run(scenario()) is True


class _ReadGoesOnAfterCancel(_CancelTurnedIntoConnectionError):
    """A layer whose receive goes on reading after it is cancelled, until its pools close:
    what channels_redis's receive was seen doing under load (await chain in BZPOPMIN's read,
    30 s after the cancel). A stand-in, for the same reason as the one above."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def receive(self, channel: str) -> dict:
        while not self.closed.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await self.closed.wait()
        raise ConnectionError("Connection closed by server.")

    async def close_pools(self) -> None:
        self.closed.set()


def test_the_listener_ends_when_cancelled_even_if_the_layers_read_goes_on():
    async def scenario() -> tuple[bool, bool]:
        listener = WaitListener()
        layer = _ReadGoesOnAfterCancel()
        task = asyncio.create_task(listener._listen(layer))
        await asyncio.wait_for(listener._joined.wait(), GUARD)
        await asyncio.sleep(0.05)  # into the read
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=GUARD)
        await asyncio.sleep(0.05)  # the read, left behind, ends once the pools are closed
        reads_left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return task in done and task.cancelled(), not reads_left

    assert run(scenario()) == (True, True)


def _rotate_quietly(agent_id: int) -> None:
    from agents.models import Agent

    Agent.objects.filter(pk=agent_id).update(token_hash=hash_token("aiw_another"))


@pytest.mark.skipif(not settings.REDIS_URL, reason="the listener's own layer is Redis's")
def test_the_listeners_own_redis_layer_never_retries_a_command():
    """When the listener's clean-up closes its layer's pools, a read still under way must end
    with the error rather than reconnect and read again: its own layer's connections retry
    nothing (the listener's loop rejoins by itself), with the shared layer's other settings."""
    from mcpbridge.wait_listener import _own_redis_layer

    shared = get_channel_layer()
    own = _own_redis_layer(shared)
    assert own is not shared and type(own) is type(shared)
    kwargs = own.create_pool(0).connection_kwargs
    assert kwargs["retry"].get_retries() == 0
    assert kwargs["socket_timeout"] is None and kwargs["socket_keepalive"] is True
    assert own.prefix == shared.prefix
    assert "retry" not in shared.create_pool(0).connection_kwargs


def test_a_rotated_token_ends_the_wait_with_a_permission_error():
    question, agent, token = _asked()

    async def scenario() -> str:
        listener = current_listener()
        wait = asyncio.create_task(
            waiting.wait_for_answer(
                question_data(question),
                question_id=question.pk,
                timeout=GUARD,
                agent_id=agent.pk,
                token=token,
            )
        )
        await _registered(listener, wait)
        await listener.ready()
        await asyncio.to_thread(agent_rotate_token, agent_id=agent.pk)
        try:
            await wait
        except Exception as exc:
            return str(exc)
        return "no error"

    text = run(scenario())
    assert "[permission_denied]" in text and "Unknown agent token" in text


@pytest.mark.skipif(not settings.REDIS_URL, reason="the in-memory layer does not cross processes")
def test_an_answer_given_in_this_process_wakes_a_wait_in_another():
    question, _, token = _asked()
    user = factories.make_user()
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    manage = os.path.join(settings.BASE_DIR, "manage.py")
    process = subprocess.Popen(
        [sys.executable, manage, "mcp_server", "--transport", "http", "--port", str(port)],
        cwd=str(settings.BASE_DIR),
        env=subprocess_env(LOG_LEVEL="WARNING"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx2.post(url, json={}, timeout=2).status_code == 401:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, "mcp_server did not start"
            time.sleep(0.2)

        async def scenario() -> tuple[bool, Any]:
            async with http_client(url, token) as client:
                wait = asyncio.create_task(
                    call(client, "check_response", question_id=question.pk, wait_seconds=50)
                )
                await asyncio.sleep(1.5)  # the waiter is in its wait
                await asyncio.to_thread(
                    task_services.question_answer,
                    question_id=question.pk,
                    actor=Actor.of_user(user),
                    answer="from afar",
                )
                return await wait

        error, answer = run(scenario())
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert not error, answer
    assert answer["status"] == "answered" and answer["answer"] == "from afar"
    assert answer["waited_seconds"] < 50  # woken, not timed out
