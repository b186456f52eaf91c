"""Redis stopped and restarted: the board and the API keep answering, health says degraded,
and live updates resume once Redis is back. Runs against an own redis-server on a free port
(the machine's Redis is shared with other test runs and is never stopped)."""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from aiworker.actors import Actor
from aiworker.asgi import application
from tasks import services
from tasks.models import Task
from tasks.states import TaskState
from tests import factories

S = TaskState
pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1")
HOST = (b"host", b"127.0.0.1")


async def _board_sees_a_move(slug: str, cookie: bytes, task_id: int) -> dict:
    board = WebsocketCommunicator(
        application, f"/ws/projects/{slug}/board/", headers=[HOST, ORIGIN, (b"cookie", cookie)]
    )
    connected, _ = await board.connect(timeout=10)
    assert connected
    await board.receive_json_from(timeout=10)  # hello
    from asgiref.sync import sync_to_async

    await sync_to_async(services.task_transition)(
        task_id=task_id, to_state=S.CANCELLED, actor=Actor.system("fault test")
    )
    event = await board.receive_json_from(timeout=10)
    await board.disconnect()
    return event


def test_redis_outage_keeps_pages_up_and_live_updates_resume(own_redis, user, project):
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [own_redis.url], "prefix": "faults"},
        }
    }
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    before = factories.make_task(project=project, title="before")
    during = factories.make_task(project=project, title="during")
    after = factories.make_task(project=project, title="after")
    with override_settings(CHANNEL_LAYERS=layers):
        channel_layers.backends.clear()
        try:
            event = async_to_sync(_board_sees_a_move)(project.slug, cookie.encode(), before.pk)
            assert event["event"] == "task.status_changed"

            own_redis.stop()
            board = client.get(reverse("board", args=[project.slug]))
            assert board.status_code == 200
            assert b"during" in board.content
            assert client.get("/api/tasks/").status_code == 200
            health = client.get("/api/health/")
            assert health.status_code == 503
            assert health.json()["status"] == "degraded"
            assert health.json()["checks"]["channel_layer"].startswith("error")
            assert health.json()["checks"]["database"] == "ok"
            # A move during the outage is committed; only its live event is lost.
            url = reverse("board-move", args=[project.slug, during.pk])
            moved = client.post(url, json.dumps({"to_state": "cancelled"}), "application/json")
            assert moved.status_code == 200
            assert Task.objects.get(pk=during.pk).state == S.CANCELLED

            own_redis.start()  # same port, empty: channels_redis reconnects on its own
            event = async_to_sync(_board_sees_a_move)(project.slug, cookie.encode(), after.pk)
            assert event["event"] == "task.status_changed"
            assert event["data"]["id"] == after.pk
            assert client.get("/api/health/").json()["checks"]["channel_layer"] == "ok"
        finally:
            channel_layers.backends.clear()
