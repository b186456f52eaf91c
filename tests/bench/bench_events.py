"""Live events: a transition fanned out to 200 board WebSockets on the Redis channel layer,
beside a bare channel-layer round trip (group_send to 200 channels, then receive) in the same run.

Runs on a throw-away test database (Django's test-database machinery), never the dev data.
"""

import asyncio
import statistics
import sys
import time
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.bench.table import Row, ratio

SUBSCRIBERS = 200
FANOUT_RUNS = 20


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _fanout(project: Any, cookie: bytes) -> tuple[list[float], list[float]]:
    from channels.layers import get_channel_layer
    from channels.testing import WebsocketCommunicator

    from aiworker.actors import Actor
    from aiworker.asgi import application
    from tasks import services
    from tasks.models import Task

    headers = [(b"origin", b"http://127.0.0.1"), (b"cookie", cookie)]
    boards = [
        WebsocketCommunicator(application, f"/ws/projects/{project.slug}/board/", headers=headers)
        for _ in range(SUBSCRIBERS)
    ]
    for board in boards:
        assert (await board.connect(timeout=20))[0]
        await board.receive_json_from(timeout=10)  # hello
    ours = []
    create = sync_to_async(Task.objects.create)
    for i in range(FANOUT_RUNS):
        task = await create(project=project, title=f"fan {i}")
        start = time.perf_counter()
        await sync_to_async(services.task_transition)(
            task_id=task.pk, to_state="in_progress", actor=Actor.system("bench")
        )
        await asyncio.gather(*(b.receive_json_from(timeout=10) for b in boards))
        ours.append((time.perf_counter() - start) * 1000)
    for board in boards:
        await board.disconnect()
    layer = get_channel_layer()
    channels = [await layer.new_channel() for _ in range(SUBSCRIBERS)]
    for name in channels:
        await layer.group_add("bench-bare", name)
    bare = []
    for _ in range(FANOUT_RUNS):
        start = time.perf_counter()
        await layer.group_send("bench-bare", {"type": "x"})
        await asyncio.gather(*(layer.receive(name) for name in channels))
        bare.append((time.perf_counter() - start) * 1000)
    for name in channels:
        await layer.group_discard("bench-bare", name)
    return ours, bare


def _fanout_rows(user: Any, project: Any) -> list[Row]:
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    ours, bare = async_to_sync(_fanout)(project, cookie.encode())
    return [
        Row(
            f"transition → {SUBSCRIBERS} board sockets (Redis), {FANOUT_RUNS} runs",
            f"p50 {statistics.median(ours):.1f} ms, p95 {_pct(ours, 0.95):.1f} ms",
            f"p50 {statistics.median(bare):.1f} ms, p95 {_pct(bare, 0.95):.1f} ms bare group_send",
            ratio(statistics.median(ours), statistics.median(bare)),
        )
    ]


def run() -> list[Row]:
    from projects.models import Project
    from tests import factories

    if not settings.REDIS_URL:
        print("bench_events: skipped, needs REDIS_URL (the Redis channel layer)", file=sys.stderr)
        return []
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        user = factories.make_user(username="bench")
        project = Project.objects.create(name="Bench events", slug="bench-events")
        return _fanout_rows(user, project)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
