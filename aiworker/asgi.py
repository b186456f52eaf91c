"""ASGI entry point: HTTP (Django, and the MCP server at /mcp) and WebSockets (Channels)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiworker.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from aiworker.routing import websocket_urlpatterns  # noqa: E402
from aiworker.startup import freeze_loaded_objects  # noqa: E402
from aiworker.ws_origin import SameOriginValidator  # noqa: E402
from mcpbridge.server import MountedMcp, is_mcp_path  # noqa: E402

mcp_app = MountedMcp() if settings.MCP_MOUNT_IN_ASGI else None


async def http_app(scope, receive, send):  # type: ignore[no-untyped-def]
    """Django for every path but /mcp, which the MCP server answers (SPEC §3)."""
    if mcp_app is not None and is_mcp_path(scope["path"]):
        await mcp_app(scope, receive, send)
    else:
        await django_asgi_app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

freeze_loaded_objects()
