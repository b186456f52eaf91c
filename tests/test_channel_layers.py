"""The embedded default's channel layer: Channels' in-memory layer, swept once a second."""

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer

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
