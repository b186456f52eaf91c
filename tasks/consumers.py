"""The board's WebSocket: one Channels group per project (SPEC §8).

The consumer only authenticates, joins the project's group and forwards what the services
broadcast after commit. It never writes; the browser acts through the board's HTTP views.
"""

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from aiworker.live import project_group, session_group
from projects import roles
from tasks.board_selectors import project_for_board

# Close codes in the application range (4000–4999), so the browser can tell why.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNKNOWN_PROJECT = 4404


class BoardConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    login_group: str | None = None  # the socket's login session: its logout closes the socket

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Closing before accept() rejects the handshake: the browser gets HTTP 403.
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        slug = self.scope["url_route"]["kwargs"]["slug"]
        project = await database_sync_to_async(project_for_board)(slug=slug)
        if project is None:
            await self.close(code=CLOSE_UNKNOWN_PROJECT)
            return
        # Only people who may see this board hear its events (projects/roles.py).
        if not await database_sync_to_async(user.has_perm)(roles.VIEW_BOARD, project):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = project_group(project.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if session_key:
            self.login_group = session_group(session_key)
            await self.channel_layer.group_add(self.login_group, self.channel_name)
        await self.accept()
        await self.send_json({"event": "board.hello", "data": {"project": project.pk}})

    async def disconnect(self, code: int) -> None:
        for group in (self.group, self.login_group):
            if group:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def session_closed(self, message: dict[str, Any]) -> None:
        """The session that opened this socket logged out (aiworker.live.close_session_sockets)."""
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The board sends nothing but keep-alive pings; anything else is ignored. A ping also
        # renews the group membership: the Redis layer drops members after `group_expiry`
        # (a day), and a board left open longer would stop getting events without a sign.
        if isinstance(content, dict) and content.get("type") == "ping":
            for group in (self.group, self.login_group):
                if group:
                    await self.channel_layer.group_add(group, self.channel_name)
            await self.send_json({"event": "board.pong", "data": {}})

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch closes stale database connections in a worker thread before every
        # handler: one thread hop per socket per event, which on a 200-socket board was most of
        # the fan-out time. Forwarding a broadcast touches no database, so it skips that hop.
        if message["type"] == "board.event":
            await self.board_event(message)
        elif message["type"] == "board.events":
            await self.board_events(message)
        else:
            await super().dispatch(message)

    async def board_events(self, message: dict[str, Any]) -> None:
        # Events committed together and sent in one message (aiworker.live._batched): one
        # frame each, in order.
        for text in message["texts"]:
            await self.send(text_data=text)

    async def board_event(self, message: dict[str, Any]) -> None:
        # The frame comes encoded once per event (aiworker.live.board_message), not once per
        # socket; a message without it (sent by an older process) is encoded here.
        text = message.get("text")
        if isinstance(text, str):
            await self.send(text_data=text)
        else:
            await self.send_json({"event": message["event"], "data": message["data"]})
