"""The agent runner: the loop that lives in an agent pod (SPEC §11).

    heartbeat -> get_next_task -> clone -> create_branch -> agent command -> commit, push
    -> create_pull_request -> trigger_preview_deploy -> complete_task

It talks to the platform only through MCP (streamable HTTP, bearer token), and never imports
Django: the agent image carries this file, the `mcp` package, git and the agent CLI, nothing else.
Any failure gives the task back with `release_task` and the reason. SIGTERM lets the current
step finish, then releases the task (a second SIGTERM stops the agent command at once).

The agent CLI is launched by the profile of the agent's kind (agents/cli_profiles.py; the kind
comes from the platform's heartbeat answer, or AGENT_KIND). A run is a success only when the
CLI reached the platform (the platform counts its tool calls) and changed something.

Configuration (environment): AIWORKER_MCP_URL, AIWORKER_AGENT_TOKEN, AGENT_KIND [the agent's
kind on the platform], AGENT_COMMAND [the profile's command], WORKDIR [/work], POLL_INTERVAL
[10 s], HEARTBEAT_INTERVAL [20 s], AGENT_TIMEOUT [3600 s], GIT_AUTH_HEADER (optional, e.g.
`Authorization: token …` for clones).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents import cli_profiles
from agents.runner_git import Git, GitError

logger = logging.getLogger("aiworker.runner")

MCP_SERVER_NAME = "aiworker"


class ToolError(Exception):
    """The platform refused a tool call; the text says why."""


class StopRequested(Exception):
    """SIGTERM arrived; raised between steps so the task is released, not abandoned."""


@dataclass
class RunnerConfig:
    mcp_url: str
    token: str = field(repr=False)
    agent_command: str = ""  # empty: the command of the kind's launch profile
    agent_kind: str = ""  # empty: the kind the platform's heartbeat answer names
    workdir: Path = Path("/work")
    poll_interval: float = 10.0
    heartbeat_interval: float = 20.0
    agent_timeout: float = 3600.0
    git_auth_header: str = field(default="", repr=False)
    project: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RunnerConfig:
        env = dict(os.environ if environ is None else environ)
        missing = [n for n in ("AIWORKER_MCP_URL", "AIWORKER_AGENT_TOKEN") if not env.get(n)]
        if missing:
            raise SystemExit(f"runner: set {' and '.join(missing)}")
        return cls(
            mcp_url=env["AIWORKER_MCP_URL"],
            token=env["AIWORKER_AGENT_TOKEN"],
            agent_command=env.get("AGENT_COMMAND") or "",
            agent_kind=env.get("AGENT_KIND") or "",
            workdir=Path(env.get("WORKDIR") or "/work"),
            poll_interval=float(env.get("POLL_INTERVAL") or 10),
            heartbeat_interval=float(env.get("HEARTBEAT_INTERVAL") or 20),
            agent_timeout=float(env.get("AGENT_TIMEOUT") or 3600),
            git_auth_header=env.get("GIT_AUTH_HEADER", ""),
            project=env.get("AIWORKER_PROJECT") or None,
        )


# --- MCP transport ----------------------------------------------------------------------------

ToolCaller = Callable[[str, dict[str, Any]], Awaitable[Any]]
RUNNER_KEEPALIVE_SECONDS = 60.0


@contextlib.asynccontextmanager
async def mcp_tools(config: RunnerConfig) -> AsyncIterator[ToolCaller]:
    """A connected MCP session, as `await call(tool, arguments) -> data`."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT

    # X-AiWorker-Client: the platform records the agent CLI's calls, not the runner's own.
    headers = {"Authorization": f"Bearer {config.token}", "X-AiWorker-Client": "runner"}
    http = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT),
        # Keep the connection between heartbeats (httpx's default drops it after 5 s idle),
        # and drop it before the server does (MCP_KEEPALIVE_SECONDS, 75 s by default).
        limits=httpx2.Limits(keepalive_expiry=RUNNER_KEEPALIVE_SECONDS),
    )
    async with http, Client(streamable_http_client(config.mcp_url, http_client=http)) as client:

        async def call(name: str, arguments: dict[str, Any]) -> Any:
            return tool_result_data(await client.call_tool(name, arguments))

        yield call


def tool_result_data(result: Any) -> Any:
    """The JSON a tool answered (structured content, else its text parsed as JSON)."""
    text = "\n".join(getattr(block, "text", "") for block in result.content or []).strip()
    if result.is_error:
        raise ToolError(text or "tool error without a message")
    data = result.structured_content
    if data is None:
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return text
    # Tools returning a non-object are wrapped by the SDK as {"result": …}.
    if isinstance(data, dict) and set(data) == {"result"}:
        data = data["result"]
    return data


# --- the task as the platform describes it ----------------------------------------------------


@dataclass
class TaskInfo:
    id: int
    title: str
    clone_url: str
    branch: str
    default_branch: str
    raw: dict[str, Any]

    @classmethod
    def parse(cls, data: Any) -> TaskInfo | None:
        """From get_next_task's answer: {"task": {...} or None, "project": {...},
        "repo_clone_url", "branch", "answered_questions", "unseen_feedback", ...}."""
        if not isinstance(data, dict):
            return None
        inner = data.get("task") if "task" in data else data
        if not isinstance(inner, dict) or not inner.get("id"):
            return None
        merged = {**data, **inner}
        project: dict[str, Any] = merged.get("project") or {}
        if not isinstance(project, dict):
            project = {}
        return cls(
            id=int(inner["id"]),
            title=str(inner.get("title") or ""),
            clone_url=str(merged.get("repo_clone_url") or merged.get("clone_url") or ""),
            branch=str(merged.get("branch") or f"task/{inner['id']}"),
            default_branch=str(project.get("default_branch") or "main"),
            raw=merged,
        )


def build_prompt(task: TaskInfo) -> str:
    """What the agent command is asked to do: the task, its specification, answers, feedback."""
    data = task.raw
    parts = [f"You are working on task #{task.id}: {task.title}", "", data.get("description") or ""]
    spec = data.get("specification") or {}
    for key, value in spec.items() if isinstance(spec, dict) else []:
        if value:
            parts += ["", f"## {key.replace('_', ' ').capitalize()}", str(value)]
    for q in data.get("answered_questions") or []:
        if isinstance(q, dict) and q.get("answer"):
            parts += ["", f"Q: {q.get('question')}", f"A: {q.get('answer')}"]
    feedback = data.get("unseen_feedback") or []
    if feedback:
        parts += ["", "## Review feedback to address"]
        parts += [f"- {f.get('body') if isinstance(f, dict) else f}" for f in feedback]
    parts += [
        "",
        f"The repository is checked out here on branch {task.branch}. Make the change and "
        "commit it with git; do not push, the runner pushes and opens the pull request.",
        f"The '{MCP_SERVER_NAME}' MCP server is configured: use log_progress(task_id={task.id}, "
        "message) for progress lines and ask_user_question / check_response (with "
        "wait_seconds=55, again while it says pending) when you need a decision from a person.",
    ]
    return "\n".join(parts).strip() + "\n"


# --- the loop ---------------------------------------------------------------------------------


class Runner:
    def __init__(self, config: RunnerConfig, call: ToolCaller) -> None:
        self.config = config
        self.call = call
        self.stopping = asyncio.Event()
        self.force_stop = asyncio.Event()
        self.step = "idle"

    def request_stop(self) -> None:
        if self.stopping.is_set():
            logger.warning("second stop request: interrupting the current step")
            self.force_stop.set()
        else:
            logger.info("stop requested during step %r: finishing it, then releasing", self.step)
        self.stopping.set()

    async def run_forever(self) -> None:
        while not self.stopping.is_set():
            finished = await self.run_once()
            if not finished:  # nothing to do, or a failure: do not hammer the platform
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.config.poll_interval)

    async def run_once(self) -> bool:
        """One turn of the loop: True when a task was taken to ready_to_test."""
        try:
            beat = await self.call("heartbeat", {"status": "idle", "message": "looking for work"})
            if not self.config.agent_kind and isinstance(beat, dict) and beat.get("kind"):
                self.config.agent_kind = str(beat["kind"])
            args = {"project": self.config.project} if self.config.project else {}
            task = TaskInfo.parse(await self.call("get_next_task", args))
        except ToolError as exc:
            logger.error("platform refused: %s", exc)
            return False
        if task is None:
            return False
        return await self.work_on(task)

    async def work_on(self, task: TaskInfo) -> bool:
        heartbeats = asyncio.create_task(self._heartbeat_loop(task))
        try:
            await self._steps(task)
            return True
        except StopRequested:
            await self._release(task, f"Runner stopped (SIGTERM) after step '{self.step}'.")
        except (TimeoutError, ToolError, GitError, OSError) as exc:
            await self._release(task, f"Step '{self.step}' failed: {exc}")
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats
            self.step = "idle"
        return False

    async def _steps(self, task: TaskInfo) -> None:
        checkout = self.config.workdir / f"task-{task.id}"
        git = Git(checkout, auth_header=self.config.git_auth_header)

        await self._step("clone")
        if not task.clone_url:
            raise ToolError("the task context has no repository clone URL")
        if checkout.exists():
            shutil.rmtree(checkout)
        await git.clone(task.clone_url, task.default_branch)

        await self._step("create_branch")
        created = await self.call("create_branch", {"task_id": task.id})
        if isinstance(created, dict) and (created.get("branch") or created.get("name")):
            task.branch = str(created.get("branch") or created.get("name"))
        base = await git.checkout_branch(task.branch, task.default_branch)
        await self._progress(task, f"Working on branch {task.branch} from {base[:12]}.")

        await self._step("agent")
        before = await self._cli_calls()
        await self._run_agent(task, checkout)
        if await self._cli_calls() == before:
            raise ToolError(
                "the agent CLI never connected to the platform: check its MCP configuration "
                "and token (not one tool call of it reached the platform)"
            )

        await self._step("push")
        sha = await git.commit_all(f"Task #{task.id}: {task.title}")
        if sha == base:
            raise ToolError("the agent CLI exited 0 with no change to commit")
        await git.push(task.branch)
        await self._progress(task, f"Pushed {sha[:12]} to {task.branch}.")

        await self._step("create_pull_request")
        await self.call("create_pull_request", {"task_id": task.id, "title": task.title})

        await self._step("trigger_preview_deploy")
        await self.call("trigger_preview_deploy", {"task_id": task.id, "commit_sha": sha})

        await self._step("complete_task")
        await self.call(
            "complete_task",
            {"task_id": task.id, "summary": f"Commit {sha[:12]} on {task.branch}; PR open."},
        )
        self.step = "done"

    async def _step(self, name: str) -> None:
        # Checked before each step: the one in flight when SIGTERM arrived has finished.
        if self.stopping.is_set():
            raise StopRequested
        self.step = name
        logger.info("step %s", name)

    async def _cli_calls(self) -> int:
        beat = await self.call("heartbeat", {"status": "busy", "message": "running the agent"})
        return int(beat.get("cli_calls") or 0) if isinstance(beat, dict) else 0

    async def _run_agent(self, task: TaskInfo, checkout: Path) -> None:
        try:
            launch = cli_profiles.launch(
                self.config.agent_kind or "claude-code",
                checkout=checkout,
                home=self.config.workdir / f"cli-home-{task.id}",
                mcp_url=self.config.mcp_url,
                prompt=build_prompt(task),
                command=self.config.agent_command,
            )
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        argv = launch.argv
        env = {
            **os.environ,
            **launch.env,
            "AIWORKER_MCP_URL": self.config.mcp_url,
            "AIWORKER_AGENT_TOKEN": self.config.token,
            "AIWORKER_TASK_ID": str(task.id),
        }
        await self._progress(task, f"Running {argv[0]}.")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=checkout,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # our SIGTERM handling decides when the agent stops
        )
        output = asyncio.create_task(_tail(proc))
        forced = asyncio.create_task(self.force_stop.wait())
        done, _ = await asyncio.wait(
            {output, forced},
            timeout=self.config.agent_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        forced.cancel()
        if output not in done:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            output.cancel()
            why = "was interrupted" if self.force_stop.is_set() else "timed out"
            raise ToolError(f"the agent command {why}")
        tail = output.result()
        if proc.returncode != 0:
            raise ToolError(f"the agent command exited with {proc.returncode}: {tail[-500:]}")

    async def _progress(self, task: TaskInfo, message: str) -> None:
        try:
            await self.call("log_progress", {"task_id": task.id, "message": message})
        except ToolError as exc:
            logger.warning("log_progress refused: %s", exc)

    async def _heartbeat_loop(self, task: TaskInfo) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval)
            try:
                await self.call("heartbeat", {"status": "busy", "message": f"task #{task.id}"})
            except ToolError as exc:
                logger.warning("heartbeat refused: %s", exc)

    async def _release(self, task: TaskInfo, reason: str) -> None:
        logger.warning("releasing task %s: %s", task.id, reason)
        try:
            await self.call("release_task", {"task_id": task.id, "reason": reason[:2000]})
        except ToolError as exc:
            # Moved meanwhile (cancelled, or already released): nothing is left to give back.
            logger.warning("release_task refused: %s", exc)


async def _tail(proc: asyncio.subprocess.Process) -> str:
    """Relay the agent's output to our log (the pod log the console shows) and keep its end."""
    kept: list[str] = []
    assert proc.stdout is not None
    async for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip()
        logger.info("agent: %s", line)
        kept = [*kept[-49:], line]
    await proc.wait()
    return "\n".join(kept)


async def _not_connected(name: str, arguments: dict[str, Any]) -> Any:
    raise ToolError("not connected to the platform")


async def main_async(config: RunnerConfig) -> None:
    config.workdir.mkdir(parents=True, exist_ok=True)
    runner = Runner(config, _not_connected)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.request_stop)
    while not runner.stopping.is_set():
        try:
            async with mcp_tools(config) as call:
                runner.call = call
                await runner.run_forever()
        except Exception as exc:
            # The platform restarted or the network broke: reconnect. A task held meanwhile
            # comes back from get_next_task (it returns the agent's own active task).
            logger.error("connection to %s lost: %s", config.mcp_url, exc)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(runner.stopping.wait(), config.poll_interval)


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stdout,
    )
    # One line per MCP request (every few seconds while idle) would bury the runner's own steps.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main_async(RunnerConfig.from_env()))


if __name__ == "__main__":
    main()
