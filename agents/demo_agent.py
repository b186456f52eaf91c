"""The demo's scripted agent command: what `make run` gives the runner instead of an LLM CLI.

The runner starts it in the task's checkout as it would start `claude -p` (AGENT_COMMAND, the
prompt appended as the last argument). Like a real CLI it reaches the platform over MCP with
the agent's token (AIWORKER_MCP_URL, AIWORKER_AGENT_TOKEN): it reads its task, logs progress,
asks one question when the task's description has a line `Ask: <question> [option, option]`
and waits for the answer, then really edits the demo app: it writes features/task-<id>.md,
which the app (seeded by `manage.py seed_demo`) lists on its page. It never commits or pushes:
the runner does, as it does after any CLI. Set AGENT_COMMAND to a real agent CLI instead and
nothing else changes.

Standard library and the `mcp` package only: it runs where the runner runs.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

from agents.runner import tool_result_data

ASK_RE = re.compile(r"^\s*Ask:\s*(?P<question>[^\[\n]+?)\s*(?:\[(?P<options>[^\]]*)\])?\s*$", re.M)
WAIT_SECONDS = 55  # per check_response call; the runner's AGENT_TIMEOUT bounds the whole wait


def question_in(description: str) -> tuple[str, list[str]] | None:
    """The question a task's description asks the agent to ask, with its options."""
    found = ASK_RE.search(description or "")
    if found is None:
        return None
    options = [o.strip() for o in (found["options"] or "").split(",") if o.strip()]
    return found["question"].strip(), options


def feature_text(task: dict[str, Any], answer: str) -> str:
    lines = [f"# {task['title']}", "", f"Built for task #{task['id']} by the demo agent."]
    if answer:
        lines += ["", f"Decided on the board: {answer}"]
    return "\n".join(lines) + "\n"


async def work(url: str, token: str, task_id: int, checkout: Path) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, Client(streamable_http_client(url, http_client=http)) as client:

        async def call(name: str, **arguments: Any) -> Any:
            return tool_result_data(await client.call_tool(name, arguments))

        context = await call("get_context")
        task = (context.get("task") if isinstance(context, dict) else None) or {}
        if int(task.get("id") or 0) != task_id:
            raise SystemExit(f"demo agent: the platform's current task is not #{task_id}")
        await call("log_progress", task_id=task_id, message="Demo agent: reading the task.")
        answer = ""
        asked = question_in(str(task.get("description") or ""))
        earlier = {q.get("question"): q.get("answer") for q in context["answered_questions"]}
        if asked is not None and asked[0] in earlier:
            answer = str(earlier[asked[0]] or "")  # a retried task: asked and answered before
        elif asked is not None:
            question, options = asked
            reply = await call(
                "ask_user_question", task_id=task_id, question=question, options=options or None
            )
            while True:
                status = await call(
                    "check_response", question_id=reply["question_id"], wait_seconds=WAIT_SECONDS
                )
                if status.get("status") == "answered":
                    answer = str(status.get("answer") or "")
                    break
            await call("log_progress", task_id=task_id, message=f"Demo agent: got '{answer}'.")
        target = checkout / "features" / f"task-{task_id}.md"
        target.parent.mkdir(exist_ok=True)
        target.write_text(feature_text(task, answer))
        await call(
            "log_progress",
            task_id=task_id,
            message=f"Demo agent: wrote {target.relative_to(checkout)}.",
        )


def main() -> None:
    url, token = os.environ["AIWORKER_MCP_URL"], os.environ["AIWORKER_AGENT_TOKEN"]
    task_id = int(os.environ["AIWORKER_TASK_ID"])
    asyncio.run(work(url, token, task_id, Path.cwd()))
    sys.stdout.write(f"demo agent: task #{task_id} done\n")


if __name__ == "__main__":
    main()
