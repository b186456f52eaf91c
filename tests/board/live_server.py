"""A real daphne serving the whole ASGI application (HTTP, static files, WebSockets) from a
thread of the test process.

In-process on purpose: the embedded InMemoryChannelLayer only reaches consumers of its own
process, and SQLite's in-memory test database is shared between the threads of one process.
Twisted's reactor runs once per process and cannot be restarted, so the first call starts the
process's one server and later calls (other test modules: tests/e2e) share it; it stops with
the process.
"""

import threading
import time
from collections.abc import Callable

_shared_url: str | None = None


def start_daphne() -> tuple[str, Callable[[], None]]:
    """(url, stop): stop is a no-op, the server outlives a module (ReactorNotRestartable)."""
    global _shared_url
    if _shared_url is None:
        _shared_url, _stop = _start_daphne()
    return _shared_url, lambda: None


def _start_daphne() -> tuple[str, Callable[[], None]]:
    from daphne.server import Server  # installs the asyncio reactor; import before twisted
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from twisted.internet import reactor

    from aiworker.asgi import application

    server = Server(
        application=ASGIStaticFilesHandler(application),
        endpoints=["tcp:port=0:interface=127.0.0.1"],  # a free port chosen by the OS
        signal_handlers=False,
        verbosity=0,
    )
    thread = threading.Thread(target=server.run, name="daphne", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.listening_addresses:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("daphne did not start listening")
        time.sleep(0.02)
    host, port = server.listening_addresses[0]

    def stop() -> None:
        reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined,misc]
        thread.join(timeout=10)

    return f"http://{host}:{port}", stop
