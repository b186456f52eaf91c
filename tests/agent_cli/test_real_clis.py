"""The real agent CLIs (Claude Code, Codex, OpenCode, pinned in package.json) driven by the
runner, unchanged, with each kind's launch profile, end to end (issue 16).

Real: the platform (daphne in this process: MCP at /mcp, the REST API, the local forge's git
over HTTP at /git/<slug>.git), `python -m agents.runner` as a subprocess, the CLI from
tests/agent_cli/node_modules/.bin (`make agent-cli-deps`), git, the gitops driver on a bare
repository. Stand-in, because no LLM runs here: the model, tests/agent_cli/model_server.py on
loopback, which scripts the turns (log_progress, ask_user_question, check_response, the CLI's
own file tool). The test answers the question through the REST API like a person.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings

from agents.models import AgentMcpCall
from projects.forges.local import LocalForge
from projects.models import PullRequest
from tasks.models import Task, TaskEvent, TaskQuestion
from tasks.services import task_create
from tasks.states import TaskState
from tests import factories
from tests.agent_cli import model_server
from tests.agent_cli.model_server import ModelServer
from tests.agent_cli.platform_front import serve_front
from tests.board.live_server import start_daphne
from tests.e2e.conftest import RunnerProcess, git

pytestmark = pytest.mark.django_db(transaction=True)

BIN = Path(__file__).with_name("node_modules") / ".bin"
CLIS = {"claude-code": "claude", "codex": "codex", "opencode": "opencode"}
# The model each CLI asks for: Codex offers its apply_patch tool only to a model it knows.
MODELS = {"claude-code": "", "codex": "gpt-5.5", "opencode": "scripted"}
NEVER_CONNECTED = (
    "the agent CLI never connected to the platform: check its MCP configuration and token "
    "(not one tool call of it reached the platform)"
)
WAIT = float(os.environ.get("CLI_TEST_WAIT", 120))


def cli_kinds() -> list:
    return [
        pytest.param(
            kind,
            id=kind,
            marks=pytest.mark.skipif(
                not (BIN / binary).exists(),
                reason=f"{binary} is not installed: make agent-cli-deps",
            ),
        )
        for kind, binary in CLIS.items()
    ]


def wait_for(predicate, what: str, runner: RunnerProcess, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if runner.proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"no {what}\n--- runner log ---\n{runner.output()[-6000:]}")


@pytest.fixture
def platform(settings, tmp_path):
    """The live platform, a project on its local forge and a preview driver that works here."""
    url, _ = start_daphne()
    settings.PUBLIC_BASE_URL = url
    settings.VAR_DIR = tmp_path / "var"
    settings.GITEA_URL = ""
    settings.DEPLOY_DRIVER = "gitops"
    settings.GITOPS_REPO_URL = str(tmp_path / "gitops.git")
    settings.PREVIEW_DOMAIN = "preview.example.test"
    project = factories.make_project(
        forge="local", image_repository="registry.example.test/acme/site"
    )
    LocalForge(project).ensure_repository()
    return url, project


@pytest.fixture
def model():
    with ModelServer() as server:
        yield server


@pytest.fixture
def start_runner(tmp_path, model):
    started: list[RunnerProcess] = []

    def start(kind: str, token: str, mcp_url: str, *, poll: float = 0.3) -> RunnerProcess:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "XDG_DATA_HOME": str(home / ".local" / "share"),
                "XDG_CACHE_HOME": str(home / ".cache"),
                "XDG_STATE_HOME": str(home / ".local" / "state"),
                "AIWORKER_MCP_URL": mcp_url,
                "AIWORKER_AGENT_TOKEN": token,
                "WORKDIR": str(tmp_path / "runner"),
                "POLL_INTERVAL": str(poll),
                "HEARTBEAT_INTERVAL": "2",
                "AGENT_TIMEOUT": "180",
                # The local forge takes the agent's own token as the git credential.
                "GIT_AUTH_HEADER": f"Authorization: Bearer {token}",
                # The scripted model: each CLI's own variables (its key is any string).
                "ANTHROPIC_BASE_URL": model.url,
                "ANTHROPIC_API_KEY": f"sk-{secrets.token_hex(8)}",
                "OPENAI_BASE_URL": f"{model.url}/v1",
                "OPENAI_API_KEY": f"sk-{secrets.token_hex(8)}",
                # OpenCode installs its plugin package from npm in the background at each start
                # (20-30 MB into a fresh HOME); the run needs none of it, so keep it offline.
                "npm_config_offline": "true",
            }
        )
        if MODELS[kind]:
            env["AGENT_MODEL"] = MODELS[kind]
        log = tmp_path / "runner.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "agents.runner"],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        runner = RunnerProcess(proc, log)
        started.append(runner)
        return runner

    yield start
    for runner in started:
        if runner.proc.poll() is None:
            runner.proc.kill()
            runner.proc.wait(timeout=30)


def _answer_through_the_api(url: str, task: Task, question: TaskQuestion, answer: str) -> str:
    """Answer as a person does with the REST API; the person's username."""
    person = factories.make_user()
    token = requests.post(
        f"{url}/api/auth/token/",
        json={"username": person.username, "password": "pw-for-tests"},
        timeout=10,
    ).json()["token"]
    answered = requests.post(
        f"{url}/api/tasks/{task.pk}/questions/{question.pk}/answer/",
        json={"answer": answer},
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert answered.status_code == 200, answered.text
    return person.username


def _run_to_ready(kind, platform, model, start_runner, mcp_url: str) -> tuple[Task, RunnerProcess]:
    url, project = platform
    task = task_create(
        project=project,
        title="Greet the visitors",
        description="Put the greeting people choose into GREETING.md.",
        actor=factories.system(),
    )
    agent, token = factories.make_agent(project=project, kind=kind)
    runner = start_runner(kind, token, mcp_url or f"{url}/mcp")

    question = wait_for(
        lambda: TaskQuestion.objects.filter(task=task).first(), "question from the CLI", runner
    )
    assert question.question == model_server.QUESTION and question.options == ["Hello", "Welcome"]
    assert Task.objects.get(pk=task.pk).state == TaskState.NEEDS_INPUT
    # Answered once the CLI is told to wait for it: check_response waits, then answers it.
    wait_for(lambda: model.called("check_response"), "check_response from the CLI", runner)
    person = _answer_through_the_api(url, task, question, "Welcome")

    wait_for(
        lambda: Task.objects.get(pk=task.pk).state == TaskState.READY_TO_TEST,
        "ready_to_test",
        runner,
    )
    task.refresh_from_db()
    repo = LocalForge(project).path
    # The CLI's own file tool wrote the file with the answer; the runner committed and pushed.
    assert git("--git-dir", str(repo), "show", f"{task.branch_name}:{model_server.FILE_NAME}") == (
        f"# Welcome\n\nAnswered by {person}."
    )
    files = git("--git-dir", str(repo), "ls-tree", "-r", "--name-only", task.branch_name)
    assert ".mcp.json" not in files.split()
    assert task.head_sha == git("--git-dir", str(repo), "rev-parse", task.branch_name)
    assert PullRequest.objects.get(project=project, head_ref=task.branch_name).state == "open"
    # The CLI itself reached the platform: its calls are counted under its own User-Agent.
    calls = dict(AgentMcpCall.objects.filter(agent=agent).values_list("tool", "calls"))
    assert {"log_progress", "ask_user_question", "check_response"} <= set(calls), calls
    assert TaskEvent.objects.filter(
        task=task, kind="progress", actor_agent=agent, message="Scripted model: reading the task."
    ).exists()
    assert token not in runner.output()
    # Neither the runner nor the CLI wrote the token anywhere: checkout, CLI home, HOME.
    workdir = Path(runner.log).parent
    assert _files_holding(workdir / "runner", token) == []
    assert _files_holding(workdir / "home", token) == []
    return task, runner


@pytest.mark.parametrize("kind", cli_kinds())
def test_the_real_cli_takes_a_task_to_ready_to_test(kind, platform, model, start_runner):
    _, runner = _run_to_ready(kind, platform, model, start_runner, "")
    assert runner.stop(signal.SIGTERM) == 0


def _files_holding(root: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.parametrize("kind", cli_kinds())
def test_tools_that_arrive_late_are_waited_for(kind, platform, model, start_runner):
    """Every MCP request of the CLI takes a second: its tools arrive seconds after it starts.
    The profile's startup wait keeps its first turn until they are there."""
    with serve_front(delay=1.0) as (mcp_url, front):
        _, runner = _run_to_ready(kind, platform, model, start_runner, mcp_url)
        assert runner.stop(signal.SIGTERM) == 0
    assert front.cli_requests >= 5  # initialize, list, three tool calls: each one delayed
    first = next(body for path, body in model.requests if body.get("tools"))
    assert _offers_platform_tools(first), "the CLI's first turn went without the tools"


@pytest.mark.parametrize("kind", cli_kinds())
def test_a_cli_with_a_wrong_token_fails_clearly(kind, platform, model, start_runner):
    """The CLI presents a wrong token (its runner's is fine): the task goes back to the
    backlog with the reason on its timeline, nothing is pushed, nothing is ready to test."""
    _, project = platform
    task = task_create(project=project, title="Greet the visitors", actor=factories.system())
    agent, token = factories.make_agent(project=project, kind=kind)
    wrong = f"aiw_{secrets.token_urlsafe(24)}"
    with serve_front(token=wrong) as (mcp_url, front):
        runner = start_runner(kind, token, mcp_url, poll=60)  # no second claim meanwhile
        event = wait_for(
            lambda: TaskEvent.objects.filter(
                task=task, to_state=TaskState.BACKLOG, actor_agent=agent
            ).first(),
            "release",
            runner,
        )
        assert runner.stop(signal.SIGTERM) == 0
    assert front.cli_requests >= 1  # the CLI tried
    if kind == "codex":  # required = true: Codex refuses to start without the platform
        assert "Step 'agent' failed: the agent command exited with 1" in event.message
        assert "Auth required" in event.message
    else:  # Claude Code and OpenCode go on without the tools and exit 0
        assert event.message == f"Step 'agent' failed: {NEVER_CONNECTED}"
    assert not AgentMcpCall.objects.filter(agent=agent).exists()
    assert not TaskEvent.objects.filter(task=task, to_state=TaskState.READY_TO_TEST).exists()
    assert not PullRequest.objects.filter(project=project).exists()
    repo = LocalForge(project).path  # the branch the runner made carries nothing new
    branch = Task.objects.get(pk=task.pk).branch_name
    assert (
        git("--git-dir", str(repo), "rev-parse", branch, "main").split()
        == [git("--git-dir", str(repo), "rev-parse", "main")] * 2
    )
    assert wrong not in runner.output() and token not in runner.output()


def _offers_platform_tools(body: dict) -> bool:
    offered = (
        model_server.anthropic_view(body)[0]
        if "messages" in body and "system" in body
        else model_server.responses_view(body)[0]
        if "input" in body
        else model_server.chat_view(body)[0]
    )
    found = all(model_server.platform_tool(offered.names, t) for t in model_server.PLATFORM_TOOLS)
    return found or offered.search  # Codex loads them by tool_search, offered from the start
