"""A client that hangs up is not a server error.

The MCP SDK (mcp 2.3, `StreamableHTTPServerTransport._handle_post_request`) logs every exception
while it reads a POST as "Error handling POST request" at ERROR with a traceback, including
starlette's `ClientDisconnect`: an agent killed, or a client timing out, mid-request. At fleet
scale that buried real errors. This filter, on the SDK's logger (settings.LOGGING), turns those
records into one DEBUG line and leaves every other record as it was.
"""

import logging

from starlette.requests import ClientDisconnect


class ClientDisconnectFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, ClientDisconnect):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.args = "client disconnected before its request was read", None
        record.exc_info, record.exc_text = None, None
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
