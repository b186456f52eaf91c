"""The channel layers: the embedded default's in-memory layer, swept once a second, and the
Redis layer's read timeout."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from aiworker import channel_layers
from aiworker.channel_layers import SweptInMemoryChannelLayer


def test_expired_entries_are_swept_at_most_once_a_second(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(channel_layers.time, "monotonic", lambda: clock[0])
    sweeps = []
    monkeypatch.setattr(InMemoryChannelLayer, "_clean_expired", lambda self: sweeps.append(1))
    layer = SweptInMemoryChannelLayer()
    for _ in range(5):
        layer._clean_expired()
    assert len(sweeps) == 1
    clock[0] += channel_layers.SWEEP_EVERY
    layer._clean_expired()
    assert len(sweeps) == 2


def test_an_expired_message_is_still_dropped():
    """Channels' own expiry still happens: a message past its expiry is never received."""
    layer = SweptInMemoryChannelLayer(expiry=0)

    async def scenario() -> None:
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.send(channel, {"type": "old"})
        layer._swept_at = 0.0  # a second has passed since the last sweep
        layer._clean_expired()
        assert channel not in layer.channels  # the message expired at once (expiry=0)
        assert channel not in layer.groups.get("g", {})  # and its channel left the group

    async_to_sync(scenario)()


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis channel layer: run with REDIS_URL")
def test_a_quiet_receive_on_redis_outlasts_the_blocking_pop():
    """A receive with nothing to read for longer than channels_redis's 5 s BZPOPMIN goes on
    waiting (redis-py 8's 5 s default socket timeout failed every quiet board socket and
    check_response listener after 5 s). There is no socket timeout at all: with one, redis-py
    sends through asyncio.wait_for, which on Python 3.11 can drop a cancellation (settings)."""
    layer = get_channel_layer()
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["socket_timeout"] is None

    async def scenario() -> str:
        channel = await layer.new_channel()
        receive = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(layer.brpop_timeout + 1.5)
        assert not receive.done(), receive.exception()
        await layer.send(channel, {"type": "late"})
        async with asyncio.timeout(5):
            return (await receive)["type"]

    assert async_to_sync(scenario)() == "late"
