"""The board's WebSocket consumer, driven through the whole ASGI application (auth included)."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from aiworker.asgi import application
from tasks import services
from tasks.states import TaskState
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1")


def _session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode())


def _communicator(slug: str, headers: list) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/projects/{slug}/board/", headers=headers)


def test_anonymous_connection_is_refused(project):
    async def scenario():
        communicator = _communicator(project.slug, [ORIGIN])
        connected, code = await communicator.connect(timeout=5)
        assert connected is False
        assert code == 4401
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_unknown_project_is_refused(user):
    cookie = _session_cookie(user)

    async def scenario():
        communicator = _communicator("no-such-project", [ORIGIN, cookie])
        connected, code = await communicator.connect(timeout=5)
        assert (connected, code) == (False, 4404)

    async_to_sync(scenario)()


def test_foreign_origin_is_refused(project, user):
    headers = [(b"origin", b"http://evil.example"), _session_cookie(user)]

    async def scenario():
        connected, _ = await _communicator(project.slug, headers).connect(timeout=5)
        assert connected is False

    async_to_sync(scenario)()


def test_signed_in_board_receives_events_after_commit(project, user):
    task = factories.make_task(project=project)
    other_project_task = factories.make_task()
    cookie = _session_cookie(user)

    async def scenario():
        communicator = _communicator(project.slug, [ORIGIN, cookie])
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        hello = await communicator.receive_json_from(timeout=5)
        assert hello == {"event": "board.hello", "data": {"project": project.pk}}
        move = sync_to_async(services.task_transition)
        await move(task_id=other_project_task.pk, to_state="in_progress", actor=factories.system())
        await move(task_id=task.pk, to_state="in_progress", actor=factories.system())
        message = await communicator.receive_json_from(timeout=5)
        assert message["event"] == "task.status_changed"
        assert message["data"]["id"] == task.pk
        assert (message["data"]["from_state"], message["data"]["to_state"]) == (
            TaskState.BACKLOG,
            TaskState.IN_PROGRESS,
        )
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.send_json_to({"type": "ping"})
        assert (await communicator.receive_json_from(timeout=5))["event"] == "board.pong"
        await communicator.disconnect()

    async_to_sync(scenario)()
