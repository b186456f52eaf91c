"""Time until the stdio MCP server answers `initialize` (issue 16: under 2 s), for the front
(`python -m mcpbridge.stdio`) and for `manage.py mcp_server --transport stdio` itself.

The limit is a bare Python process answering the same message: what starting any Python stdio
server costs on this machine. Measured on the wire, as an agent CLI sees it.
"""

import json
import os
import subprocess
import sys
import time

from django.conf import settings

from tests.bench.table import Row, ratio

ROUNDS = 3
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}
BARE = (
    "import sys, json; sys.stdin.readline(); "
    'print(json.dumps({"jsonrpc": "2.0", "id": 1, "result": {}}), flush=True)'
)


def _first_answer(argv: list[str]) -> float:
    env = {**os.environ, "AIWORKER_AGENT_TOKEN": "aiw_bench", "LOG_LEVEL": "WARNING"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=settings.BASE_DIR,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write((json.dumps(INIT) + "\n").encode())
    proc.stdin.flush()
    answer = json.loads(proc.stdout.readline())
    elapsed = time.perf_counter() - start
    assert answer["id"] == 1, answer
    proc.stdin.close()
    proc.wait(timeout=60)
    return elapsed


def _median(argv: list[str]) -> float:
    return sorted(_first_answer(argv) for _ in range(ROUNDS))[ROUNDS // 2]


def run() -> list[Row]:
    bare = _median([sys.executable, "-c", BARE])
    front = _median([sys.executable, "-m", "mcpbridge.stdio"])
    command = _median([sys.executable, "manage.py", "mcp_server", "--transport", "stdio"])
    limit = f"{bare:.2f} s (bare Python answering)"
    return [
        Row(
            "stdio initialize answered, python -m mcpbridge.stdio",
            f"{front:.2f} s",
            limit,
            ratio(front, bare),
            f"< 2 s: {'met' if front < 2 else 'NOT met'}",
        ),
        Row(
            "stdio initialize answered, manage.py mcp_server --transport stdio",
            f"{command:.2f} s",
            limit,
            ratio(command, bare),
            "(the platform loading: what the front's child takes)",
        ),
    ]
