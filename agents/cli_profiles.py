"""How the runner launches each agent CLI, chosen by the agent's kind (STACK.md "Agent CLIs").

Each profile writes that CLI's own MCP configuration, sets the variables that make it wait for
the platform's tools before its first turn, allows the platform's tools and the file tools
without a permission prompt, and passes the prompt the way the CLI expects. The token is never
written to a file: every configuration names the AIWORKER_AGENT_TOKEN variable instead.
AGENT_COMMAND, when set, replaces the command line (the prompt is appended as one argument);
the configuration files and variables are still provided.

Standard library only: the agent image carries this file, not Django.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

SERVER = "aiworker"
TOKEN_ENV = "AIWORKER_AGENT_TOKEN"
# The platform tools an agent CLI may call on its own; the runner pushes, opens the pull
# request, triggers the preview and completes the task itself.
CLI_TOOLS = (
    "heartbeat",
    "get_context",
    "log_progress",
    "ask_user_question",
    "check_response",
    "get_feedback",
)
CLAUDE_FILE_TOOLS = (
    "Read",
    "Edit",
    "MultiEdit",
    "Write",
    "Glob",
    "Grep",
    "Bash(git status:*)",
    "Bash(git diff:*)",
    "Bash(git add:*)",
    "Bash(git commit:*)",
    "Bash(git log:*)",
)
CONNECT_WAIT_SECONDS = 60  # how long a CLI waits for the platform's tools before its turn


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # written configuration, never a secret


def _override(command: str, prompt: str) -> list[str] | None:
    return [*shlex.split(command), prompt] if command.strip() else None


def _exclude(checkout: Path, *names: str) -> None:
    """Keep configuration written into the checkout out of every commit."""
    exclude = checkout / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a") as fh:
        fh.writelines(f"\n/{name}\n" for name in names)


def claude_code(checkout: Path, home: Path, mcp_url: str, prompt: str, command: str) -> Launch:
    config = checkout / ".mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    SERVER: {
                        "type": "http",
                        "url": mcp_url,
                        "headers": {"Authorization": f"Bearer ${{{TOKEN_ENV}}}"},
                    }
                }
            },
            indent=2,
        )
        + "\n"
    )
    _exclude(checkout, ".mcp.json")
    allowed = [f"mcp__{SERVER}__{t}" for t in CLI_TOOLS] + list(CLAUDE_FILE_TOOLS)
    # -p's value first: --mcp-config and --allowedTools take lists and would swallow it.
    argv = ["claude", "-p", prompt, "--strict-mcp-config", "--mcp-config", str(config)]
    argv += ["--allowedTools", ",".join(allowed)]
    if os.environ.get("AGENT_MODEL"):
        argv += ["--model", os.environ["AGENT_MODEL"]]
    env = {
        # -p connects MCP servers in the background unless told to wait for them.
        "MCP_CONNECTION_NONBLOCKING": "false",
        "MCP_CONNECT_TIMEOUT_MS": str(CONNECT_WAIT_SECONDS * 1000),
        "MCP_TOOL_TIMEOUT": "120000",  # check_response waits up to 55 s
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env["IS_SANDBOX"] = "1"  # Claude Code refuses to run as root without it
    return Launch(_override(command, prompt) or argv, env, [config])


def codex(checkout: Path, home: Path, mcp_url: str, prompt: str, command: str) -> Launch:
    codex_home = home / "codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    lines = ['approval_policy = "never"', 'sandbox_mode = "workspace-write"']
    if os.environ.get("AGENT_MODEL"):
        lines.append(f"model = {json.dumps(os.environ['AGENT_MODEL'])}")
    if os.environ.get("OPENAI_BASE_URL"):
        lines += [
            'model_provider = "aiworker-openai"',
            "[model_providers.aiworker-openai]",
            'name = "OpenAI-compatible"',
            f"base_url = {json.dumps(os.environ['OPENAI_BASE_URL'])}",
            'wire_api = "responses"',
            'env_key = "OPENAI_API_KEY"',
        ]
    lines += [
        f"[mcp_servers.{SERVER}]",
        f"url = {json.dumps(mcp_url)}",
        f'bearer_token_env_var = "{TOKEN_ENV}"',
        "required = true",  # no run without the platform's tools
        f"startup_timeout_sec = {CONNECT_WAIT_SECONDS}",
        "tool_timeout_sec = 120",
        'default_tools_approval_mode = "approve"',
        f"enabled_tools = {json.dumps(list(CLI_TOOLS))}",
    ]
    config = codex_home / "config.toml"
    config.write_text("# Written by the AiWorker runner for each task.\n" + "\n".join(lines) + "\n")
    argv = ["codex", "exec", "--json", "--skip-git-repo-check", prompt]
    return Launch(_override(command, prompt) or argv, {"CODEX_HOME": str(codex_home)}, [config])


def opencode(checkout: Path, home: Path, mcp_url: str, prompt: str, command: str) -> Launch:
    home.mkdir(parents=True, exist_ok=True)
    config: dict = {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "mcp": {
            SERVER: {
                "type": "remote",
                "url": mcp_url,
                "enabled": True,
                "timeout": CONNECT_WAIT_SECONDS * 1000,
                "headers": {"Authorization": f"Bearer {{env:{TOKEN_ENV}}}"},
            }
        },
        "permission": {"edit": "allow", "bash": {"git *": "allow", "*": "deny"}},
    }
    model = os.environ.get("AGENT_MODEL", "")
    if os.environ.get("OPENAI_BASE_URL"):
        config["provider"] = {
            "aiworker-openai": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "OpenAI-compatible",
                "options": {
                    "baseURL": os.environ["OPENAI_BASE_URL"],
                    "apiKey": "{env:OPENAI_API_KEY}",
                },
                "models": {model or "default": {}},
            }
        }
        model = f"aiworker-openai/{model or 'default'}"
    if model:
        config["model"] = model
    path = home / "opencode.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    argv = ["opencode", "run", prompt]
    return Launch(_override(command, prompt) or argv, {"OPENCODE_CONFIG": str(path)}, [path])


PROFILES = {"claude-code": claude_code, "codex": codex, "opencode": opencode}


def launch(
    kind: str, *, checkout: Path, home: Path, mcp_url: str, prompt: str, command: str = ""
) -> Launch:
    """The command line, variables and configuration files for the agent CLI of `kind`."""
    profile = PROFILES.get(kind)
    if profile is None:
        argv = _override(command, prompt)
        if argv is None:
            raise ValueError(
                f"no launch profile for agent kind {kind!r}: set AGENT_COMMAND "
                f"(profiles: {', '.join(PROFILES)})"
            )
        return Launch(argv)
    return profile(checkout, home, mcp_url, prompt, command)
