"""The standalone MCP HTTP app as an import path: `mcp_server --workers N` hands it to uvicorn,
which imports it in each worker process (one Django setup, one MCP server per process)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiworker.settings")
django.setup()

from aiworker.startup import freeze_loaded_objects  # noqa: E402
from mcpbridge.server import build_server, http_app  # noqa: E402  (needs the setup above)

application = http_app(build_server())
freeze_loaded_objects()
