"""Run the demo agent: the real runner (agents/runner.py) with the demo's scripted agent command.

`make run` starts it beside the web server (Procfile `agent:`). It takes the demo agent's
token from var/demo-credentials.json (written by seed_demo; rotated and saved again when it is
missing or no longer valid), waits for the platform to answer, then replaces itself with the
runner, the token passed in its environment only. AGENT_KIND=claude-code (or codex, opencode)
runs that real CLI through its launch profile instead of agents/demo_agent.py (the CLI's model
credentials come from your environment); nothing else changes. DEMO_AGENT=off keeps it idle (the
token's MCP calls are then yours alone, as tests/run/test_make_run.py needs).
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents.models import Agent
from agents.services import agent_rotate_token, hash_token
from projects.models import Project

DEMO_AGENT = "demo-agent"
PLATFORM_WAIT = 120.0  # seconds: the web server of `make run` starts beside this process


def runner_environment(
    *, base_url: str, token: str, workdir: Path, poll_interval: str = "2"
) -> dict[str, str]:
    """The runner's environment for the demo agent of the platform at `base_url`."""
    root = str(settings.BASE_DIR)
    # AGENT_KIND names a real CLI (claude-code, codex, opencode): its launch profile runs it, as
    # in an agent pod (agents/cli_profiles.py), from `make agent-cli-deps` when installed there.
    # AGENT_COMMAND replaces the whole command line, the profile's flags included.
    real_cli = os.environ.get("AGENT_KIND", "")
    command = os.environ.get("AGENT_COMMAND") or (
        "" if real_cli else f"{sys.executable} -m agents.demo_agent"
    )
    clis = Path(root) / "tests" / "agent_cli" / "node_modules" / ".bin"
    path = os.pathsep.join(filter(None, [str(clis) if clis.is_dir() else "", os.environ["PATH"]]))
    return {
        **os.environ,
        "PATH": path,
        "AIWORKER_MCP_URL": f"{base_url}/mcp",
        "AIWORKER_AGENT_TOKEN": token,
        "AIWORKER_PROJECT": "demo",
        "AGENT_COMMAND": command,
        # The local forge takes the agent's token as the git credential too.
        "GIT_AUTH_HEADER": f"Authorization: Bearer {token}",
        "WORKDIR": str(workdir),
        "POLL_INTERVAL": str(poll_interval),
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }


class Command(BaseCommand):
    help = "Run the demo agent (the runner with a scripted agent command) against this platform."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--base-url", default=settings.PUBLIC_BASE_URL)
        parser.add_argument("--poll-interval", default="2")

    def handle(self, *args: Any, **options: Any) -> None:
        agent = Agent.objects.filter(name=DEMO_AGENT).first()
        if agent is None:
            raise CommandError("No demo agent: run `manage.py seed_demo` first.")
        demo = Project.objects.filter(slug="demo").first()
        why_off = ""
        if os.environ.get("DEMO_AGENT", "on") == "off":
            why_off = "DEMO_AGENT=off"
        elif demo is None or demo.forge != Project.Forge.LOCAL:
            why_off = "the demo project is not on the local forge"
        if why_off:
            # Under honcho one process ending stops them all: stay, and say why idle.
            self.stdout.write(f"demo agent: off ({why_off})")
            self.stdout.flush()
            while True:
                time.sleep(3600)
        token = self._token(agent)
        base = options["base_url"].rstrip("/")
        self._wait_for(f"{base}/api/health/")
        env = runner_environment(
            base_url=base,
            token=token,
            workdir=Path(settings.VAR_DIR) / "demo-agent",
            poll_interval=options["poll_interval"],
        )
        self.stdout.write(f"demo agent: working the demo project's tasks through {base}/mcp")
        self.stdout.flush()
        os.chdir(settings.BASE_DIR)
        os.execvpe(sys.executable, [sys.executable, "-m", "agents.runner"], env)

    def _token(self, agent: Agent) -> str:
        path = Path(settings.VAR_DIR) / "demo-credentials.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        token = saved.get("agent_token", "")
        if token and hash_token(token) == agent.token_hash and agent.revoked_at is None:
            return str(token)
        with transaction.atomic():
            token = agent_rotate_token(agent_id=agent.pk)
        saved["agent_token"] = token
        path.write_text(json.dumps(saved))
        path.chmod(0o600)
        return token

    def _wait_for(self, url: str) -> None:
        deadline = time.monotonic() + PLATFORM_WAIT
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise CommandError(f"{url} did not answer within {PLATFORM_WAIT:g}s.") from None
                time.sleep(0.5)
