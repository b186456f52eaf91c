"""STAND-IN for the agent CLI (no LLM runs here): edits a file and commits, like `claude -p`.

Called as `python fake_agent.py [--hang MARKER | --offline] PROMPT` in the task checkout. It
checks that the runner configured the platform's MCP server for it, logs a progress line through
it (as a real CLI does; the runner releases the task of a CLI that never reached the platform),
and leaves the prompt beside the checkout. With --hang it writes its pid to MARKER and sleeps
(a runner killed mid-task); with --offline it edits without calling the platform.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

args = sys.argv[1:]
if args[:1] == ["--hang"]:
    Path(args[1]).write_text(str(os.getpid()))
    time.sleep(600)
    sys.exit(1)
prompt = args[-1]
config = json.loads(Path(".mcp.json").read_text())["mcpServers"]["aiworker"]
assert config["url"] == os.environ["AIWORKER_MCP_URL"], config
assert config["headers"]["Authorization"] == "Bearer ${AIWORKER_AGENT_TOKEN}"
assert os.environ["AIWORKER_AGENT_TOKEN"].startswith("aiw_")
task_id = os.environ["AIWORKER_TASK_ID"]


async def log_progress() -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {os.environ['AIWORKER_AGENT_TOKEN']}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(config["url"], http_client=http)) as client,
    ):
        result = await client.call_tool(
            "log_progress", {"task_id": int(task_id), "message": "stand-in agent editing"}
        )
        assert not result.is_error, result


if "--offline" not in args:
    asyncio.run(log_progress())
Path("..", f"prompt-{task_id}.txt").write_text(prompt)
with open("CHANGES.md", "a") as fh:
    fh.write(f"- task {task_id}: done by the stand-in agent\n")
subprocess.run(["git", "add", "CHANGES.md"], check=True)
subprocess.run(
    ["git", "commit", "--quiet", "-m", f"Stand-in agent work on task {task_id}"], check=True
)
print(f"stand-in agent finished task {task_id}")
