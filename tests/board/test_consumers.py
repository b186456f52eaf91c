"""The board's WebSocket consumer, driven through the whole ASGI application (auth included)."""

import asyncio

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
HOST = (b"host", b"127.0.0.1")  # what a browser sends with the handshake


def _session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode())


def _communicator(slug: str, headers: list) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, f"/ws/projects/{slug}/board/", headers=[HOST, *headers]
    )


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
        await move(task_id=other_project_task.pk, to_state="cancelled", actor=factories.system())
        await move(task_id=task.pk, to_state="cancelled", actor=factories.system())
        message = await communicator.receive_json_from(timeout=5)
        assert message["event"] == "task.status_changed"
        assert message["data"]["id"] == task.pk
        assert (message["data"]["from_state"], message["data"]["to_state"]) == (
            TaskState.BACKLOG,
            TaskState.CANCELLED,
        )
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.send_json_to({"type": "ping"})
        assert (await communicator.receive_json_from(timeout=5))["event"] == "board.pong"
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_forwarding_an_event_skips_the_database_thread_hop(project, user, monkeypatch):
    """Channels closes stale DB connections in a worker thread before each handler; a board
    forwarding a broadcast touches no database, and 200 boards paid that hop on every event."""
    hops = []

    async def counting_close_old_connections():
        hops.append(1)

    monkeypatch.setattr("channels.consumer.aclose_old_connections", counting_close_old_connections)
    task = factories.make_task(project=project)
    cookie = _session_cookie(user)

    async def scenario():
        communicator = _communicator(project.slug, [ORIGIN, cookie])
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_json_from(timeout=5)  # hello
        assert len(hops) == 1  # the connect
        await sync_to_async(services.task_transition)(
            task_id=task.pk, to_state="cancelled", actor=factories.system()
        )
        message = await communicator.receive_json_from(timeout=5)
        assert (message["event"], message["data"]["id"]) == ("task.status_changed", task.pk)
        assert len(hops) == 1
        await communicator.send_json_to({"type": "ping"})
        assert (await communicator.receive_json_from(timeout=5))["event"] == "board.pong"
        assert len(hops) == 2  # everything but a broadcast still goes through Channels' dispatch
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_board_event_goes_out_as_encoded_once_by_the_sender(project, user):
    """Each socket sends the frame the broadcast carries (encoded once per event, not once per
    socket); a message without one, from a process of an older release, is encoded here."""
    from channels.layers import get_channel_layer

    from aiworker.live import board_message, project_group

    cookie = _session_cookie(user)

    async def scenario():
        communicator = _communicator(project.slug, [ORIGIN, cookie])
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_json_from(timeout=5)  # hello
        layer = get_channel_layer()
        message = board_message("task.updated", {"id": 5, "title": "Caf\u00e9 <b>"})
        await layer.group_send(project_group(project.pk), message)
        assert await communicator.receive_from(timeout=5) == message["text"]
        older = {"type": "board.event", "event": "task.updated", "data": {"id": 6}}
        await layer.group_send(project_group(project.pk), older)
        assert await communicator.receive_json_from(timeout=5) == {
            "event": "task.updated",
            "data": {"id": 6},
        }
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_events_committed_together_leave_in_one_send_and_arrive_in_order(
    project, user, monkeypatch
):
    """An MCP worker thread hands its commit's events to the loop (aiworker.live): those that
    queue up while the group's previous send is under way go out in one group_send (each costs
    Redis round trips), and the board gets one frame each, in order."""
    from channels.layers import get_channel_layer

    from aiworker import live

    layer = get_channel_layer()
    sent: list[str] = []
    group_send = layer.group_send

    async def recording_group_send(group, message):
        sent.append(message["type"])
        await group_send(group, message)

    monkeypatch.setattr(layer, "group_send", recording_group_send)
    cookie = _session_cookie(user)

    async def scenario():
        communicator = _communicator(project.slug, [ORIGIN, cookie])
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_json_from(timeout=5)  # hello
        loop = asyncio.get_running_loop()

        def commit() -> None:  # what a claim's on_commit callbacks do in a worker thread
            with live.send_from_threads_on(loop):
                live.send_now(project_id=project.pk, event="task.status_changed", data={"id": 1})
                live.send_now(project_id=project.pk, event="agent.status", data={"id": 2})
                live.send_now(project_id=project.pk, event="task.updated", data={"id": 3})

        # While an earlier send holds the group's turn, the three queue up; then leave together.
        group = live.project_group(project.pk)
        outbox = live._outboxes.setdefault(loop, {}).setdefault(group, live._Outbox())
        async with outbox.lock:
            await asyncio.to_thread(commit)
            for _ in range(500):
                if len(outbox.queued) == 3:
                    break
                await asyncio.sleep(0.01)
            assert len(outbox.queued) == 3
        frames = [await communicator.receive_json_from(timeout=5) for _ in range(3)]
        assert [(f["event"], f["data"]["id"]) for f in frames] == [
            ("task.status_changed", 1),
            ("agent.status", 2),
            ("task.updated", 3),
        ]
        assert sent == ["board.events"]
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_only_runs_of_board_events_are_batched():
    from aiworker.live import _batched, board_message

    a, b = board_message("task.updated", {"id": 1}), board_message("task.updated", {"id": 2})
    wake = {"type": "question.answered", "question_id": 7}
    assert _batched([a]) == [a]
    assert _batched([a, b]) == [{"type": "board.events", "texts": [a["text"], b["text"]]}]
    assert _batched([wake, wake]) == [wake, wake]
    assert _batched([a, wake, b]) == [a, wake, b]


BURST = 150


def test_boards_connecting_all_at_once_all_join_and_get_events(project, user):
    """A restarted web process sees every open board reconnect at once; on the Redis layer more
    than 100 joins in flight exhausted redis-py's default pool (MaxConnectionsError)."""
    task = factories.make_task(project=project)
    cookie = _session_cookie(user)

    async def scenario():
        boards = [_communicator(project.slug, [ORIGIN, cookie]) for _ in range(BURST)]
        results = await asyncio.gather(*(b.connect(timeout=30) for b in boards))
        assert [connected for connected, _ in results] == [True] * BURST
        for board in boards:
            await board.receive_json_from(timeout=10)  # hello
        await sync_to_async(services.task_transition)(
            task_id=task.pk, to_state="cancelled", actor=factories.system()
        )
        events = await asyncio.gather(*(b.receive_json_from(timeout=10) for b in boards))
        assert {(e["event"], e["data"]["id"]) for e in events} == {("task.status_changed", task.pk)}
        await asyncio.gather(*(b.disconnect() for b in boards))

    async_to_sync(scenario)()


def test_a_ping_renews_the_group_membership(project, user):
    """The channel layer drops group members after `group_expiry`; a board that pings (every
    few minutes, board.js) is put back, so a board left open for days keeps getting events."""
    from channels.layers import get_channel_layer

    from aiworker.live import project_group

    task = factories.make_task(project=project)
    cookie = _session_cookie(user)

    async def scenario():
        layer = get_channel_layer()
        joined: list[str] = []
        group_add = layer.group_add

        async def recording_group_add(group: str, channel: str) -> None:
            if group == project_group(project.pk):  # (the login session's group is another)
                joined.append(channel)
            await group_add(group, channel)

        layer.group_add = recording_group_add
        communicator = _communicator(project.slug, [ORIGIN, cookie])
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_json_from(timeout=5)  # hello
        # What expiry does: the layer forgets the member.
        await layer.group_discard(project_group(project.pk), joined[0])
        await communicator.send_json_to({"type": "ping"})
        assert (await communicator.receive_json_from(timeout=5))["event"] == "board.pong"
        move = sync_to_async(services.task_transition)
        await move(task_id=task.pk, to_state="cancelled", actor=factories.system())
        message = await communicator.receive_json_from(timeout=5)
        assert (message["event"], message["data"]["id"]) == ("task.status_changed", task.pk)
        assert len(joined) == 2  # on connect, and again on the ping
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_non_member_cannot_subscribe_to_a_board(project, settings):
    # Per-project roles (SPEC §13): the events of a board reach only people who may see it.
    settings.PROJECT_DEFAULT_ROLE = ""
    cookie = _session_cookie(factories.make_user())

    async def scenario():
        communicator = _communicator(project.slug, [ORIGIN, cookie])
        connected, code = await communicator.connect(timeout=5)
        assert (connected, code) == (False, 4403)

    async_to_sync(scenario)()


def test_a_viewer_subscribes_to_its_board(project, settings):
    from projects.models import Membership

    settings.PROJECT_DEFAULT_ROLE = ""
    user = factories.make_user()
    Membership.objects.create(project=project, user=user, role="viewer")
    cookie = _session_cookie(user)

    async def scenario():
        communicator = _communicator(project.slug, [ORIGIN, cookie])
        connected, _ = await communicator.connect(timeout=5)
        assert connected is True
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_logging_out_closes_the_sockets_that_session_opened(project, user):
    """Only that session's: another login of the same person is still valid, so its board
    stays open (its socket would reconnect at once anyway)."""
    client = Client()
    client.force_login(user)
    cookie = (
        b"cookie",
        f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode(),
    )
    other = _session_cookie(user)

    async def scenario():
        mine = _communicator(project.slug, [ORIGIN, cookie])
        theirs = _communicator(project.slug, [ORIGIN, other])
        assert (await mine.connect(timeout=5))[0] and (await theirs.connect(timeout=5))[0]
        await mine.receive_json_from(timeout=5)  # board.hello
        await theirs.receive_json_from(timeout=5)
        answer = await sync_to_async(client.post)("/logout/")
        assert answer.status_code == 302
        closed = await mine.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": 4401}
        assert await theirs.receive_nothing(timeout=0.3)
        await theirs.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize(
    "origin",
    [
        b"https://127.0.0.1",  # another scheme
        b"http://127.0.0.1:8001",  # another port
        b"http://127.0.0.1.evil.example",  # another host
        b"null",  # a sandboxed page or a file
    ],
)
def test_an_origin_differing_in_scheme_port_or_host_is_refused(project, user, origin):
    headers = [(b"origin", origin), _session_cookie(user)]

    async def scenario():
        connected, _ = await _communicator(project.slug, headers).connect(timeout=5)
        assert connected is False

    async_to_sync(scenario)()


def test_the_origin_must_match_the_port_the_page_came_from(project, user):
    cookie = _session_cookie(user)

    async def scenario():
        same = WebsocketCommunicator(
            application,
            f"/ws/projects/{project.slug}/board/",
            headers=[(b"host", b"127.0.0.1:8001"), (b"origin", b"http://127.0.0.1:8001"), cookie],
        )
        assert (await same.connect(timeout=5))[0] is True
        await same.disconnect()
        other = WebsocketCommunicator(
            application,
            f"/ws/projects/{project.slug}/board/",
            headers=[(b"host", b"127.0.0.1:8001"), (b"origin", b"http://127.0.0.1:8000"), cookie],
        )
        assert (await other.connect(timeout=5))[0] is False

    async_to_sync(scenario)()
