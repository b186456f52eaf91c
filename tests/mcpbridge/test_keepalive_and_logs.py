"""The MCP server keeps idle connections longer than an agent's beat (MCP_KEEPALIVE_SECONDS),
and a client that hangs up mid-request is one DEBUG line, not an ERROR with a traceback."""

import asyncio
import logging
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from django.core.management import call_command
from starlette.requests import ClientDisconnect

from aiworker.log_disconnects import ClientDisconnectFilter
from mcpbridge.management.commands import mcp_server
from tests import factories
from tests.mcpbridge.conftest import call, http_client, run

SDK_LOGGER = "mcp.server.streamable_http"


@pytest.fixture
def no_freeze(monkeypatch):
    monkeypatch.setattr(mcp_server, "freeze_loaded_objects", lambda: None)


def test_the_keepalive_setting_reaches_uvicorn(settings, monkeypatch, no_freeze):
    settings.MCP_KEEPALIVE_SECONDS = 123
    seen: list[uvicorn.Config] = []

    async def serve(self: uvicorn.Server, sockets: Any = None) -> None:
        seen.append(self.config)

    monkeypatch.setattr(uvicorn.Server, "serve", serve)
    call_command("mcp_server", transport="http", port=0)
    assert [c.timeout_keep_alive for c in seen] == [123]


def test_the_keepalive_setting_reaches_every_worker(settings, monkeypatch, no_freeze):
    settings.MCP_KEEPALIVE_SECONDS = 90
    runs: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: runs.append(kwargs))
    call_command("mcp_server", transport="http", port=0, workers=2)
    assert [(r["workers"], r["timeout_keep_alive"]) for r in runs] == [(2, 90)]


def test_the_default_outlasts_a_beat(settings):
    assert settings.MCP_KEEPALIVE_SECONDS > 30


def _record(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        SDK_LOGGER, logging.ERROR, __file__, 1, "Error handling POST request", None, exc_info
    )


def test_the_filter_quiets_a_disconnect_and_keeps_real_errors():
    quiet, loud = _record(ClientDisconnect()), _record(ValueError("broken"))
    assert ClientDisconnectFilter().filter(quiet) is False  # the logger is at WARNING
    assert (quiet.levelno, quiet.exc_info) == (logging.DEBUG, None)
    assert ClientDisconnectFilter().filter(loud) is True
    assert loud.levelno == logging.ERROR and loud.exc_info is not None


@pytest.mark.django_db(transaction=True)
def test_a_client_hanging_up_mid_request_is_not_an_error(mcp_url, caplog):
    _, token = factories.make_agent()
    caplog.set_level(logging.DEBUG, logger=SDK_LOGGER)
    url = urlsplit(mcp_url)
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "heartbeat"}}'
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(
            f"POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]  # then hang up before the rest
        )

    async def until_logged() -> bool:
        async with http_client(mcp_url, token) as client:
            for _ in range(200):  # the server handles the hang-up in its own thread
                failed, _ = await call(client, "heartbeat")
                assert not failed
                if any(r.name == SDK_LOGGER and "disconnected" in r.msg for r in caplog.records):
                    return True
                await asyncio.sleep(0.02)
        return False

    assert run(until_logged())
    records = [r for r in caplog.records if r.name == SDK_LOGGER]
    assert [r for r in records if r.levelno >= logging.WARNING or r.exc_info] == []
    assert (logging.DEBUG, "client disconnected before its request was read") in [
        (r.levelno, r.getMessage()) for r in records
    ]
