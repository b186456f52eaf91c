"""Each agent CLI's launch profile: its own MCP configuration (never the token), the variables
that make it wait for the platform's tools, the allow-list, and the prompt where it belongs."""

import json
import subprocess
import tomllib

import pytest

from agents import cli_profiles

URL = "http://platform.test:3100/mcp"
TOKEN = "aiw_secret-token-value"


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("AIWORKER_AGENT_TOKEN", TOKEN)
    path = tmp_path / "task-1"
    subprocess.run(["git", "init", "--quiet", str(path)], check=True)
    return path


def _launch(kind, checkout, command=""):
    home = checkout.parent / "home"
    return cli_profiles.launch(
        kind, checkout=checkout, home=home, mcp_url=URL, prompt="Do it.", command=command
    )


def _no_token_anywhere(launch):
    for path in launch.files:
        assert TOKEN not in path.read_text(), path
    assert all(TOKEN not in arg for arg in launch.argv)
    assert all(TOKEN not in value for value in launch.env.values())


def test_claude_code_profile(checkout):
    launch = _launch("claude-code", checkout)
    _no_token_anywhere(launch)
    assert launch.argv[:3] == ["claude", "-p", "Do it."]
    assert "--strict-mcp-config" in launch.argv
    allowed = launch.argv[launch.argv.index("--allowedTools") + 1].split(",")
    assert "mcp__aiworker__log_progress" in allowed and "Edit" in allowed
    assert "mcp__aiworker__complete_task" not in allowed  # the runner completes the task
    server = json.loads((checkout / ".mcp.json").read_text())["mcpServers"]["aiworker"]
    assert server["url"] == URL
    assert server["headers"]["Authorization"] == "Bearer ${AIWORKER_AGENT_TOKEN}"
    assert launch.env["MCP_CONNECTION_NONBLOCKING"] == "false"
    assert int(launch.env["MCP_CONNECT_TIMEOUT_MS"]) >= 30000
    assert "/.mcp.json" in (checkout / ".git" / "info" / "exclude").read_text()


def test_codex_profile(checkout, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    launch = _launch("codex", checkout)
    _no_token_anywhere(launch)
    assert launch.argv[:2] == ["codex", "exec"] and launch.argv[-1] == "Do it."
    config = tomllib.loads(
        (cli_profiles.Path(launch.env["CODEX_HOME"]) / "config.toml").read_text()
    )
    server = config["mcp_servers"]["aiworker"]
    assert server["url"] == URL and server["bearer_token_env_var"] == "AIWORKER_AGENT_TOKEN"
    assert server["required"] is True and server["default_tools_approval_mode"] == "approve"
    provider = config["model_providers"][config["model_provider"]]
    assert provider["base_url"] == "http://127.0.0.1:9/v1" and provider["wire_api"] == "responses"
    assert not list(checkout.glob("*.toml"))  # outside the checkout


def test_opencode_profile(checkout, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("AGENT_MODEL", "scripted")
    launch = _launch("opencode", checkout)
    _no_token_anywhere(launch)
    assert launch.argv == ["opencode", "run", "Do it."]
    config = json.loads(cli_profiles.Path(launch.env["OPENCODE_CONFIG"]).read_text())
    server = config["mcp"]["aiworker"]
    assert server["type"] == "remote" and server["url"] == URL
    assert server["headers"]["Authorization"] == "Bearer {env:AIWORKER_AGENT_TOKEN}"
    assert config["model"] == "aiworker-openai/scripted"


def test_agent_command_overrides_the_command_line_only(checkout):
    launch = _launch("claude-code", checkout, command="my-wrapper --fast")
    assert launch.argv == ["my-wrapper", "--fast", "Do it."]
    assert (checkout / ".mcp.json").exists() and launch.env["MCP_CONNECTION_NONBLOCKING"]


def test_other_kind_needs_agent_command(checkout):
    with pytest.raises(ValueError, match="AGENT_COMMAND"):
        _launch("other", checkout)
    assert _launch("other", checkout, command="aider").argv == ["aider", "Do it."]
