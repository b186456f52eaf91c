"""`python -m mcpbridge.stdio`: the stdio MCP server, answering `initialize` at once.

Loading the platform (Django, its apps, the `mcp` package) takes 5-10 s on a busy machine, and
agent CLIs give an MCP server a few seconds to answer `initialize` before they give up on it
(Claude Code: MCP_CONNECT_TIMEOUT_MS, 5 s by default). So this front, which imports nothing but
the standard library and `mcpbridge.identity`, answers `initialize` itself and starts the real
server (`manage.py mcp_server --transport stdio`) as a child. It hands the child the same
`initialize` and relays every other message both ways; a `tools/list` or tool call sent
meanwhile is answered as soon as the platform has loaded. The child's own answer to
`initialize` is dropped (and compared with ours: a difference is logged on stderr).

The child inherits the environment (AIWORKER_AGENT_TOKEN, DATABASE_URL, …) and stderr; its
exit status is this process's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from mcpbridge.identity import INSTRUCTIONS, NAME, VERSION

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"
# What the child (mcp 2.3) negotiates: the client's version when it is one of these, else the
# newest (mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS; a test keeps the two equal).
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
# What the child declares (a test compares the whole answer with the child's own).
CAPABILITIES: dict[str, Any] = {
    "prompts": {"listChanged": False},
    "resources": {"subscribe": False, "listChanged": False},
    "tools": {"listChanged": False},
}


def initialize_result(params: dict[str, Any] | None) -> dict[str, Any]:
    requested = (params or {}).get("protocolVersion")
    version = requested if requested in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[-1]
    return {
        "protocolVersion": version,
        "capabilities": CAPABILITIES,
        "serverInfo": {"name": NAME, "version": VERSION},
        "instructions": INSTRUCTIONS,
    }


class Front:
    def __init__(self, out: IO[bytes], child: subprocess.Popen[bytes]) -> None:
        self.out = out
        self.child = child
        self.lock = threading.Lock()
        self.answered: dict[str, Any] = {}  # initialize request id (as JSON) -> our answer

    def write(self, line: bytes) -> None:
        with self.lock:
            self.out.write(line if line.endswith(b"\n") else line + b"\n")
            self.out.flush()

    def from_client(self, line: bytes) -> None:
        message = _parse(line)
        if message is not None and message.get("method") == "initialize" and "id" in message:
            result = initialize_result(message.get("params"))
            self.answered[json.dumps(message["id"])] = result
            answer = {"jsonrpc": "2.0", "id": message["id"], "result": result}
            self.write(json.dumps(answer, separators=(",", ":")).encode())
        assert self.child.stdin is not None
        self.child.stdin.write(line if line.endswith(b"\n") else line + b"\n")
        self.child.stdin.flush()

    def from_child(self, line: bytes) -> None:
        message = _parse(line)
        if message is not None and "method" not in message and "id" in message:
            ours = self.answered.pop(json.dumps(message["id"]), None)
            if ours is not None:
                if message.get("result") != ours:
                    sys.stderr.write(
                        f"mcpbridge.stdio: the server's initialize answer {message!r} differs "
                        f"from the one given early {ours!r}\n"
                    )
                return
        self.write(line)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _pump_client(front: Front, source: IO[bytes]) -> None:
    try:
        for line in iter(source.readline, b""):
            if line.strip():
                front.from_client(line)
    except (BrokenPipeError, OSError):
        pass
    finally:
        # The client went away: the child reads end-of-file and stops, as it would directly.
        if front.child.stdin is not None:
            with contextlib.suppress(OSError):
                front.child.stdin.close()


def main(argv: list[str] | None = None) -> int:
    if not os.environ.get("AIWORKER_AGENT_TOKEN"):
        sys.stderr.write("mcpbridge.stdio: set AIWORKER_AGENT_TOKEN to the agent's token.\n")
        return 2
    command = [sys.executable, str(MANAGE), "mcp_server", "--transport", "stdio"]
    child = subprocess.Popen(
        [*command, *(argv if argv is not None else sys.argv[1:])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=MANAGE.parent,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    front = Front(sys.stdout.buffer, child)
    threading.Thread(target=_pump_client, args=(front, sys.stdin.buffer), daemon=True).start()
    assert child.stdout is not None
    try:
        for line in iter(child.stdout.readline, b""):
            front.from_child(line)
    except BrokenPipeError:
        child.terminate()
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
