"""The web server's relay of live events (aiworker/live.py): only a signed, fresh, known event
is sent to the project's boards; anything else is refused and nothing is sent."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core import signing
from django.test import Client, override_settings

from aiworker import live

URL = "/internal/live-events/"


def _listen(project_id: int) -> tuple:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.project_group(project_id), channel)
    return layer, channel


def _nothing_sent(layer, channel) -> bool:  # type: ignore[no-untyped-def]
    async def probe() -> bool:
        await layer.send(channel, {"type": "probe"})
        return (await layer.receive(channel))["type"] == "probe"

    return async_to_sync(probe)()


def test_a_signed_event_reaches_the_project_group():
    layer, channel = _listen(7)
    body = signing.dumps(
        {"project_id": 7, "event": "task.status_changed", "data": {"id": 1}}, salt=live.RELAY_SALT
    )
    answer = Client().post(URL, data=body, content_type="text/plain")
    assert answer.status_code == 204
    message = async_to_sync(layer.receive)(channel)
    assert message == {
        "type": "board.event",
        "event": "task.status_changed",
        "data": {"id": 1},
        "text": '{"event": "task.status_changed", "data": {"id": 1}}',
    }


@pytest.mark.parametrize(
    "body",
    [
        signing.dumps({"project_id": 8, "event": "task.updated", "data": {}}, salt="other"),
        "not signed at all",
    ],
)
def test_an_unsigned_or_wrongly_signed_event_is_refused(body):
    layer, channel = _listen(8)
    assert Client().post(URL, data=body, content_type="text/plain").status_code == 403
    assert _nothing_sent(layer, channel)


def test_an_unknown_event_or_a_get_is_refused():
    layer, channel = _listen(9)
    body = signing.dumps(
        {"project_id": 9, "event": "task.deleted", "data": {}}, salt=live.RELAY_SALT
    )
    assert Client().post(URL, data=body, content_type="text/plain").status_code == 400
    assert Client().get(URL).status_code == 405
    assert _nothing_sent(layer, channel)


@override_settings(LIVE_EVENTS_FORWARD_URL="http://127.0.0.1:9/unreachable/")
def test_a_relay_that_cannot_be_reached_costs_only_liveness(caplog):
    live.send_now(project_id=1, event="task.updated", data={"id": 1})
    assert "not relayed" in caplog.text
